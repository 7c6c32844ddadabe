"""One CompBench metric over a batch of (prompt, image): parse the prompts, ask the backend once, apply the rule.

Each function returns one dict per image: ``{"score": float, ...}`` plus what the score was computed from
(questions and answers, the objects and detections, counts), so a number can be checked by hand.
"""

from __future__ import annotations

from typing import Sequence

from . import parsing, rules


def bvqa(backend, prompts: Sequence[str], images) -> list[dict]:
    questions = [parsing.bvqa_questions(p) for p in prompts]
    answers = backend.vqa(images, questions)
    return [{"score": rules.bvqa_score(a), "questions": q, "answers": [round(v, 6) for v in a]}
            for q, a in zip(questions, answers)]


def spatial_2d(backend, prompts: Sequence[str], images) -> list[dict]:
    parsed = [parsing.related_objects(p) for p in prompts]
    labels = [[o for o in (a, b) if o] for a, _, b in parsed]
    found = backend.detect(images, labels)
    out = []
    for (a, relation, b), dets in zip(parsed, found):
        d1 = rules.best_detection(dets, a, 0.0) if a else None
        d2 = rules.best_detection(dets, b, 0.0) if b else None
        score = rules.spatial_2d_score(d1, d2, relation) if relation else 0.0
        out.append({"score": score, "objects": [a, relation, b],
                    "detections": [d.to_dict() if d else None for d in (d1, d2)]})
    return out


def spatial_3d(backend, prompts: Sequence[str], images) -> list[dict]:
    parsed = [parsing.depth_objects(p) for p in prompts]
    found = backend.detect(images, [[o for o in (a, b) if o] for a, _, b in parsed])
    depths = backend.depth(images)
    out = []
    for (a, relation, b), dets, depth in zip(parsed, found, depths):
        d1 = rules.best_detection(dets, a, 0.0) if a else None
        d2 = rules.best_detection(dets, b, 0.0) if b else None
        score = rules.spatial_3d_score(d1, d2, depth, relation) if relation else 0.0
        out.append({"score": score, "objects": [a, relation, b],
                    "detections": [d.to_dict() if d else None for d in (d1, d2)]})
    return out


def numeracy(backend, prompts: Sequence[str], images, vocabulary: dict[str, str]) -> list[dict]:
    targets = [parsing.counted_objects(p, vocabulary) for p in prompts]
    found = backend.detect(images, [[label for label, _ in t] for t in targets])
    out = []
    for t, dets in zip(targets, found):
        kept = rules.deduplicate(dets)  # the backend already applied its score threshold
        out.append({"score": rules.numeracy_score(t, dets, 0.0), "targets": [list(x) for x in t],
                    "counts": {label: sum(d.label == label for d in kept) for label, _ in t}})
    return out


def clip(backend, prompts: Sequence[str], images, drop_adjectives: bool = False) -> list[dict]:
    texts = [parsing.drop_adjectives(p) if drop_adjectives else p for p in prompts]
    return [{"score": s, "text": t} for s, t in zip(backend.clip(images, texts), texts)]


# metric name -> (function, backend parts it needs)
METRICS = {
    "bvqa": (bvqa, ("vqa",)),
    "spatial_2d": (spatial_2d, ("detector",)),
    "spatial_3d": (spatial_3d, ("detector", "depth")),
    "numeracy": (numeracy, ("detector",)),
    "clip": (clip, ("clip",)),
    "clip_complex": (lambda b, p, i: clip(b, p, i, drop_adjectives=True), ("clip",)),
}
