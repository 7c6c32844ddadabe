"""Preference data engine: for each plain prompt x, sample K rewrites from a policy, render I images per rewrite
with seeds shared across candidates (candidates differ only by their text), score every image against the ORIGINAL
x with a weighted composite reward, embed x and the candidates for cos(e(x), e(y)), then select pairs.

Pair strategies (``PreferenceConfig.strategy``):
* ``best_vs_worst`` -- highest vs lowest composite score (the DPO-on-Promptist recipe, scheshmi/DPO-PROMPTIST).
* ``all_pairs``     -- every pair whose score gap exceeds ``min_gap``.
* ``floors``        -- Prompt-A-Video (arXiv 2412.15156, jiyt17/Prompt-A-Video: booster/dpo/filter.py): the chosen is
  one of the top ``floors_top_k`` candidates and passes every per-metric floor; rejected = any lower-ranked candidate
  with a gap above ``min_gap``.

Resumability: every rewrite list, rendered image, score and per-prompt result is cached on disk under a key hashing
everything that determines it (model, prompt, seed, settings). A run killed at any point and restarted re-renders
nothing already on disk. Results are bit-identical to an uninterrupted run because each unit of work has a fixed
composition: one image per render call, one candidate's I images per reward call, one prompt's texts per similarity
call, and floats survive the JSON round trip exactly.

Multi-process (``accelerate launch`` on GPUs, ``torchrun`` on CPUs): prompts are split across processes
(``PartialState.split_between_processes``); each writes per-prompt results to the cache, and the main process merges
them in prompt order.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..cache import ContentCache, cache_key, fingerprint_path, save_dataset
from ..rewards.composite import weighted_sum
from .config import PreferenceConfig
from .preference_report import build_report, report_markdown

RewriteFn = Callable[[str, int, int], list[str]]  # (prompt, k, seed) -> k texts
RenderFn = Callable[[str, int], Any]  # (prompt, seed) -> PIL image
SimilarityFn = Callable[[Sequence[str], Sequence[str]], Any]  # (a, b) -> (N,) cosine

# --------------------------------------------------------------------------------------------- records
@dataclass
class Candidate:
    """One candidate text with its per-metric mean scores, composite score and similarity to the original."""

    text: str
    metrics: dict[str, float]
    per_image: dict[str, list[float]]
    score: float
    similarity: float


def rank(candidates: Sequence[Candidate]) -> list[Candidate]:
    """Best first by composite score; ties keep the sampling order (stable sort)."""
    return sorted(candidates, key=lambda c: -c.score)


def pair_row(prompt: str, chosen: Candidate, rejected: Candidate) -> dict[str, Any]:
    row = {"prompt": prompt, "chosen": chosen.text, "rejected": rejected.text,
           "chosen_score": chosen.score, "rejected_score": rejected.score,
           "score_gap": chosen.score - rejected.score,
           "chosen_similarity": chosen.similarity, "rejected_similarity": rejected.similarity}
    for name in chosen.metrics:
        row[f"chosen_{name}"] = chosen.metrics[name]
        row[f"rejected_{name}"] = rejected.metrics[name]
    return row


def select_pairs(prompt: str, candidates: Sequence[Candidate], config: PreferenceConfig
                 ) -> tuple[list[dict[str, Any]], Counter]:
    """Pairs for one prompt under ``config.strategy`` and the reasons candidates/pairs were dropped."""
    dropped: Counter = Counter()
    ranked = rank(candidates)
    if len(ranked) < 2:
        dropped["fewer_than_2_distinct_candidates"] += 1
        return [], dropped
    if config.strategy == "best_vs_worst":
        options = [(ranked[0], ranked[-1])]
    elif config.strategy == "all_pairs":
        options = [(ranked[i], ranked[j]) for i in range(len(ranked)) for j in range(i + 1, len(ranked))]
    else:  # floors (Prompt-A-Video)
        options = []
        for i, chosen in enumerate(ranked[: config.floors_top_k]):
            failing = [m for m, floor in config.floors.items() if not chosen.metrics[m] > floor]
            for metric in failing:
                dropped[f"chosen_below_floor:{metric}"] += 1
            if not failing:
                options += [(chosen, rejected) for rejected in ranked[i + 1:]]
        if not options:
            dropped["no_chosen_passes_floors"] += 1
    pairs = []
    for chosen, rejected in options:
        if not chosen.score - rejected.score > config.min_gap:
            dropped["score_gap_not_above_min_gap"] += 1
        else:
            pairs.append(pair_row(prompt, chosen, rejected))
    return pairs, dropped


def load_prompts(config: PreferenceConfig) -> list[str]:
    """Prompts from a .txt (one per line) or .jsonl/.json file (``prompt_column``); blank lines skipped."""
    from .data import read_jsonl

    if config.prompts is None:
        raise ValueError("No prompts given; set `prompts:` to a .txt file (one per line) or a .jsonl file.")
    path = Path(config.prompts)
    if not path.is_file():
        raise FileNotFoundError(f"Prompts file {path} does not exist.")
    if path.suffix in (".jsonl", ".json"):
        rows = read_jsonl(path)
        missing = [i for i, r in enumerate(rows) if config.prompt_column not in r]
        if missing:
            raise ValueError(f"{path}: rows {missing[:5]} have no {config.prompt_column!r} field; set prompt_column.")
        prompts = [str(r[config.prompt_column]) for r in rows]
    else:
        prompts = path.read_text(encoding="utf-8").splitlines()
    prompts = [p.strip() for p in prompts if p.strip()]
    if not prompts:
        raise ValueError(f"Prompts file {path} holds no prompts.")
    return prompts[: config.max_prompts] if config.max_prompts is not None else prompts


# --------------------------------------------------------------------------------------------- default components
def default_rewrite_fn(config: PreferenceConfig) -> RewriteFn:
    """Sample ``k`` rewrites with ``PromptRewriter`` (seeded, so a rerun samples the same texts)."""
    from ..rewrite.rewriter import PromptRewriter

    rewriter = PromptRewriter.from_pretrained(config.policy)

    def rewrite(prompt: str, k: int, seed: int) -> list[str]:
        candidates = rewriter.rewrite([prompt], k=k, do_sample=True, temperature=config.sample_temperature,
                                      max_new_tokens=config.max_new_tokens, seed=seed)[0]
        return [c.text for c in candidates]

    return rewrite


def default_render_fn(config: PreferenceConfig) -> RenderFn:
    """One image per call with ``ImageGenerator`` (its own ``torch.Generator(seed)``), settings from the config."""
    from ..generate.generator import ImageGenerator

    generator = ImageGenerator(config.t2i_model)
    settings = {k: v for k, v in config.render_settings().items() if v is not None}

    def render(prompt: str, seed: int):
        return generator.generate([prompt], [seed], progress=False, **settings).images[0]

    return render


def default_rewards(config: PreferenceConfig) -> dict[str, Any]:
    from ..rewards.registry import build_reward

    models = config.reward_models or {}
    return {name: build_reward(name, models.get(name), t2i_model=config.t2i_model) for name in config.rewards}


def default_similarity_fn(config: PreferenceConfig) -> SimilarityFn:
    from ..rewards.text_similarity import TextSimilarity

    return TextSimilarity.from_pretrained(config.similarity_model).similarity


# --------------------------------------------------------------------------------------------- engine
@dataclass
class PreferenceOutput:
    """The pairs dataset, the per-prompt records, the report, and where they were written."""

    dataset: Any
    records: list[dict[str, Any]]
    report: dict[str, Any]
    output_dir: Path
    rendered: int = 0
    reused: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)


class PreferenceEngine:
    """Sample -> render -> score -> embed -> pairs, every step cached (see module docstring).

    Components default to the config's models and are built lazily (a fully cached run loads no model); tests
    inject tiny or fake ones: ``rewrite_fn(prompt, k, seed)``, ``render_fn(prompt, seed)``, ``rewards``
    ``{name: Reward}`` and ``similarity_fn(a, b)``.
    """

    def __init__(self, config: PreferenceConfig, rewrite_fn: RewriteFn | None = None,
                 render_fn: RenderFn | None = None, rewards: dict[str, Any] | None = None,
                 similarity_fn: SimilarityFn | None = None):
        self.config = config
        self.cache = ContentCache(config.resolved_cache_dir)
        self._fingerprints: dict[str, str] = {}
        self._components = {"rewrite": rewrite_fn, "render": render_fn, "rewards": rewards,
                            "similarity": similarity_fn}
        if rewards is not None and sorted(rewards) != sorted(config.rewards):
            raise ValueError(f"rewards objects {sorted(rewards)} do not match config.rewards {config.rewards}.")

    def component(self, name: str):
        if self._components[name] is None:
            builders = {"rewrite": default_rewrite_fn, "render": default_render_fn, "rewards": default_rewards,
                        "similarity": default_similarity_fn}
            self._components[name] = builders[name](self.config)
        return self._components[name]

    # -- keys: content fingerprints of every model, never their names ------------------------------------------
    def fingerprint(self, role: str) -> str:
        """sha256 of the files of the model in ``role`` (policy, t2i, similarity, reward:<name>), computed once."""
        if role not in self._fingerprints:
            from ..rewards.registry import reward_model_name
            from ..rewards.text_similarity import embedder_path

            c = self.config
            if role == "policy":
                path = _model_path(c.policy)
            elif role == "t2i":
                path = _model_path(c.t2i_model)
            elif role == "similarity":
                path = embedder_path(c.similarity_model)
            else:
                name = role.split(":", 1)[1]
                model = reward_model_name(name, (c.reward_models or {}).get(name), t2i_model=c.t2i_model)
                path = _model_path(model) if model is not None else None
            self._fingerprints[role] = fingerprint_path(path) if path is not None else "none"
        return self._fingerprints[role]

    def seeds(self) -> list[int]:
        return [self.config.seed + j for j in range(self.config.images_per_candidate)]

    def render_identity(self) -> dict[str, Any]:
        """What besides (prompt, seed) decides an image: the T2I weights, dtype and every sampling setting."""
        from ..utils import select_device_dtype

        return {"t2i": self.fingerprint("t2i"), "dtype": str(select_device_dtype()[1]),
                **self.config.render_settings()}

    def image_key(self, text: str, seed: int) -> str:
        return cache_key("image", self.render_identity(), text, seed)

    def result_key(self, index: int, prompt: str) -> str:
        c = self.config
        rewards = {name: self.fingerprint(f"reward:{name}") for name in c.rewards}
        return cache_key("result", self.fingerprint("policy"), self.render_identity(), prompt, c.seed + index,
                         c.num_candidates, c.include_original, self.seeds(), c.rewards, rewards, c.weights,
                         self.fingerprint("similarity"), c.sample_temperature, c.max_new_tokens)

    # -- steps --------------------------------------------------------------------------------------------------
    def rewrites(self, index: int, prompt: str) -> list[str]:
        c = self.config
        key = cache_key("rewrites", self.fingerprint("policy"), prompt, c.num_candidates, c.seed + index,
                        c.sample_temperature, c.max_new_tokens)
        texts = self.cache.load_json("rewrites", key)
        if texts is None:
            texts = [str(t) for t in self.component("rewrite")(prompt, c.num_candidates, c.seed + index)]
            self.cache.save_json("rewrites", key, texts)
        return texts

    def images(self, text: str) -> tuple[list[str], list[Any]]:
        """``text``'s I images (one per shared seed) and their cache keys; renders only what is not on disk."""
        keys, images = [], []
        for seed in self.seeds():
            key = self.image_key(text, seed)
            keys.append(key)
            images.append(self.cache.image(key, lambda seed=seed: self.component("render")(text, seed)))
        return keys, images

    def scores(self, prompt: str, image_keys: list[str], images: list[Any]) -> dict[str, list[float]]:
        """Per-metric per-image scores against the original ``prompt``; one reward call per candidate (cached)."""
        per_image = {}
        for name in self.config.rewards:
            key = cache_key("score", name, self.fingerprint(f"reward:{name}"), prompt, image_keys)
            values = self.cache.load_json("scores", key)
            if values is None:
                reward = self.component("rewards")[name]
                values = [float(v) for v in reward.score([prompt] * len(images), images).tolist()]
                self.cache.save_json("scores", key, values)
            per_image[name] = values
        return per_image

    def process_prompt(self, index: int, prompt: str) -> dict[str, Any]:
        """The cached record of one prompt: candidates with scores and similarities."""
        key = self.result_key(index, prompt)
        record = self.cache.load_json("results", key)
        if record is not None:
            return record
        texts = ([prompt] if self.config.include_original else []) + self.rewrites(index, prompt)
        unique = [t for i, t in enumerate(texts) if t.strip() and t not in texts[:i]]
        similarity = self.component("similarity")([prompt] * len(unique), unique)
        similarity = [float(s) for s in (similarity.tolist() if hasattr(similarity, "tolist") else similarity)]
        candidates = []
        for text, sim in zip(unique, similarity):
            per_image = self.scores(prompt, *self.images(text))
            metrics = {name: float(statistics.fmean(values)) for name, values in per_image.items()}
            candidates.append({"text": text, "metrics": metrics, "per_image": per_image, "similarity": sim,
                               "score": float(weighted_sum(metrics, dict(zip(self.config.rewards,
                                                                                          self.config.weights))))})
        record = {"index": index, "prompt": prompt, "seeds": self.seeds(), "candidates": candidates,
                  "num_sampled": len(texts), "num_duplicates": len(texts) - len(unique)}
        self.cache.save_json("results", key, record)
        return record

    # -- run ----------------------------------------------------------------------------------------------------
    def run(self, prompts: Sequence[str] | None = None) -> PreferenceOutput | None:
        """Process every prompt (split across processes), then merge, select pairs and write the outputs.

        Returns the output on the main process and ``None`` on the others.
        """
        prompts = list(prompts) if prompts is not None else load_prompts(self.config)
        state = process_state()
        with state.split_between_processes(list(range(len(prompts)))) as mine:
            for index in mine:
                self.process_prompt(index, prompts[index])
        state.wait_for_everyone()
        if not state.is_main_process:
            return None
        records = [self.cache.load_json("results", self.result_key(i, p)) for i, p in enumerate(prompts)]
        return self.write_outputs(records)

    def write_outputs(self, records: list[dict[str, Any]]) -> PreferenceOutput:
        import datasets

        rows, dropped = [], Counter()
        for record in records:
            candidates = [Candidate(**c) for c in record["candidates"]]
            pairs, why = select_pairs(record["prompt"], candidates, self.config)
            dropped.update(why)
            if record["num_duplicates"]:
                dropped["duplicate_candidate_texts"] += record["num_duplicates"]
            for pair in pairs:
                pair.update(seeds=record["seeds"], prompt_index=record["index"], policy=self.config.policy,
                            t2i_model=self.config.t2i_model)
            rows += pairs
        dataset = datasets.Dataset.from_list(rows) if rows else datasets.Dataset.from_dict(
            {k: [] for k in ("prompt", "chosen", "rejected")})
        if not rows:
            reasons = ", ".join(f"{k}: {v}" for k, v in sorted(dropped.items())) or "no candidates"
            raise ValueError(
                f"the preference run kept 0 pairs from {len(records)} prompts (dropped by {reasons}); relax the filter "
                "that dropped them (lower min_gap or floors, raise num_candidates or sample_temperature) — nothing "
                f"was written to {self.config.output_dir} (the image/score cache is kept)."
            )
        report = build_report(records, rows, dropped, self.config)
        report["images"] = {"rendered_this_run": self.cache.rendered, "reused_from_cache": self.cache.reused}
        out = Path(self.config.output_dir)
        save_dataset(dataset, out / "dataset")
        from ..utils import atomic_write_json, atomic_write_text

        atomic_write_text(out / "pairs.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        atomic_write_json(out / "report.json", report)
        atomic_write_text(out / "report.md", report_markdown(report))
        return PreferenceOutput(dataset=dataset, records=records, report=report, output_dir=out,
                                rendered=self.cache.rendered, reused=self.cache.reused, rows=rows)


def process_state():
    """accelerate's ``PartialState``; on a CPU-only machine with ``cpu=True`` so that ``torchrun`` processes form a
    gloo group (without it every CPU process would believe it is alone and process every prompt)."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def _model_path(name: str):
    from ..models.loading import resolve_model_path

    return resolve_model_path(name)


def run_preferences(config: PreferenceConfig, **components) -> PreferenceOutput | None:
    """Build the engine for ``config`` (components optional, see ``PreferenceEngine``) and run it."""
    return PreferenceEngine(config, **components).run()
