"""The t2i-prompt app: rewrite and generate side by side, steer with hooks, score, vote, evaluate.

    make app                                   # http://127.0.0.1:7860, the shapes world (no download, no GPU)
    python app/app.py [--model M] [--rewriter R] [--port 7860] [--host 127.0.0.1] [--votes FILE]

Blocks and wiring only: every handler calls one ``t2i_prompt.workflows.studio.Studio`` method and turns the
library's one-line errors into ``gr.Error``. Named API endpoints (``gradio_client``): ``/rewrite``, ``/compare``,
``/generate``, ``/score``, ``/attention_maps``, ``/vote``, ``/edit``, ``/repaint``, ``/evaluate``; see the README.
"""

from __future__ import annotations

import argparse
import functools

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
MAX_FILE_SIZE = "8mb"  # uploads over this are refused by the server before a handler runs
QUEUE_SIZE = 32
LPA_PRESETS = ["", "lpa_late_only", "lpa_early_style_late", "lpa_mid_only", "lpa_full"]
HISTORY_COLUMNS = ["prompt", "refined", "seeds", "k", "pick", "steps", "guidance", "negative", "model", "rewriter"]


def teach(fn):
    """Run a handler; the library's user errors (bad prompt, box, model, file) become ``gr.Error`` with the same
    one-line message, so the app reports them and keeps serving."""
    import gradio as gr

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ValueError, FileNotFoundError) as e:
            raise gr.Error(str(e), print_exception=False) from e

    return wrapper


def _none_if_blank(x):
    return None if x in (None, "") else x


def _default_if_zero(x):
    """Steps / guidance fields: 0 (or blank) means the model's own default."""
    return None if x in (None, "") or float(x) == 0 else x


def build_app(studio, title: str = "t2i-prompt"):
    """The ``gr.Blocks`` over ``studio`` (a ``Studio``); launch it or test it in-process."""
    import gradio as gr
    import pandas as pd

    from t2i_prompt.workflows.inputs import random_seed
    from t2i_prompt.workflows.studio import EVAL_METHODS, MODEL_DEFAULT

    def progress_fn(progress, desc):
        return lambda done, total: progress((done, total), desc=desc)

    def decoding(do_sample, num_beams, temperature, top_p, max_new_tokens):
        out = {"do_sample": bool(do_sample), "max_new_tokens": int(max_new_tokens)}
        if do_sample:
            out.update(temperature=float(temperature), top_p=float(top_p))
        elif num_beams:
            out["num_beams"] = int(num_beams)
        return out

    def score_table(result) -> pd.DataFrame:
        rows = []
        for which in ("original", "refined"):
            for j, seed in enumerate(result.seeds):
                row = {"image": which, "seed": seed, **{k: v[j] for k, v in result.scores[which].items()}}
                if result.detector and result.detector.get(which):
                    row["detector_all_correct"] = result.detector[which][j]["all_correct"]
                rows.append(row)
        return pd.DataFrame(rows)

    # ---- handlers (one library call each) -------------------------------------------------------------------
    @teach
    def rewrite(prompt, seeds, k, model, rewriter, do_sample, num_beams, temperature, top_p, max_new_tokens):
        seed = studio_seeds(seeds)[0]
        out = studio.rewrite(prompt, k=int(k), seed=seed, rewriter=_none_if_blank(rewriter),
                             model=_none_if_blank(model),
                             decoding=decoding(do_sample, num_beams, temperature, top_p, max_new_tokens))
        return pd.DataFrame(out["candidates"]), out["candidates"][out["best"]]["text"]

    @teach
    def compare(prompt, negative, seeds, k, pick, steps, guidance, model, rewriter, do_sample, num_beams,
                temperature, top_p, max_new_tokens, history, progress=gr.Progress()):
        result = studio.compare(prompt, seeds=seeds, k=int(k), pick=int(pick), model=_none_if_blank(model),
                                rewriter=_none_if_blank(rewriter), num_inference_steps=_default_if_zero(steps),
                                guidance_scale=_default_if_zero(guidance), negative_prompt=negative or None,
                                decoding=decoding(do_sample, num_beams, temperature, top_p, max_new_tokens),
                                progress=progress_fn(progress, "denoising"))
        captions = {w: [(im, f"{w} · seed {s}") for im, s in zip(result.images[w], result.seeds)]
                    for w in ("original", "refined")}
        gen = result.settings["generation"]
        entry = {"prompt": result.original, "refined": result.refined, "seeds": ", ".join(map(str, result.seeds)),
                 "k": int(k), "pick": int(pick), "steps": gen["num_inference_steps"],
                 "guidance": gen["guidance_scale"], "negative": negative or "", "model": result.settings["model"],
                 "rewriter": result.settings["rewriter"]}
        history = [entry] + list(history or [])
        data = result.to_dict()
        return (captions["original"], captions["refined"], pd.DataFrame(result.candidates)[
                    [c for c in ("text", "mean_logprob", "similarity", "empty") if c in result.candidates[0]]]
                if result.candidates else pd.DataFrame(), result.refined, score_table(result), data,
                history, pd.DataFrame(history, columns=HISTORY_COLUMNS), data)

    def studio_seeds(seeds):
        from t2i_prompt.workflows.inputs import parse_seeds

        return parse_seeds(seeds)

    def spec_from(lpa, win_lo, win_hi, regions, auto_regions, hb_steps, sr_delta, words, sr_source):
        window = (float(win_lo), float(win_hi)) if lpa else None
        return studio.hook_spec(lpa=lpa or None, lpa_window=window, regions=regions or "",
                                auto_regions=bool(auto_regions), hb_steps=int(hb_steps), sr_delta=float(sr_delta),
                                capture=words or "", sr_source=sr_source)

    @teach
    def generate(prompt, negative, seeds, steps, guidance, model, lpa, win_lo, win_hi, regions, auto_regions,
                 hb_steps, sr_delta, words, sr_source=MODEL_DEFAULT, progress=gr.Progress()):
        spec = spec_from(lpa, win_lo, win_hi, regions, auto_regions, hb_steps, sr_delta, words, sr_source)
        result = studio.generate(prompt, seeds, model=_none_if_blank(model),
                                 num_inference_steps=_default_if_zero(steps),
                                 guidance_scale=_default_if_zero(guidance), negative_prompt=negative or None, spec=spec,
                                 progress=progress_fn(progress, "denoising"))
        images = [(im, f"seed {s}") for im, s in zip(result.images, result.seeds)]
        heat = [(im, f"{word} · seed {s}") for word, ims in result.heatmaps.items()
                for im, s in zip(ims, result.seeds)]
        overlay = studio.region_preview(prompt, spec, result.images[0]) if result.regions else None
        rows = [{"seed": s, **{k: v[j] for k, v in result.scores.items()},
                 **({"detector_all_correct": result.detector[j]["all_correct"]} if result.detector else {})}
                for j, s in enumerate(result.seeds)]
        return images, heat, overlay, pd.DataFrame(rows), {"settings": result.settings, "scores": result.scores,
                                                             "detector": result.detector}

    @teach
    def preview(prompt, regions, auto_regions):
        spec = studio.hook_spec(regions=regions or "", auto_regions=bool(auto_regions))
        return studio.region_preview(prompt, spec)

    @teach
    def split(prompt):
        if not (prompt or "").strip():
            return {"content": [], "style": [], "style_phrase": ""}
        return studio.lpa_split(prompt)

    @teach
    def attention_maps(prompt, words, seed, model):
        out = studio.attention_maps(prompt, words, seed=studio_seeds(seed)[0], model=_none_if_blank(model))
        return out["image"], [(im, word) for word, im in out["maps"].items()]

    @teach
    def repaint(prompt, region, seed, new_seed, model, hb_steps, sr_delta):
        new_seed = None if new_seed in (None, "") or int(new_seed) < 0 else new_seed
        out = studio.repaint(prompt, region, seed=studio_seeds(seed)[0], new_seed=new_seed,
                             model=_none_if_blank(model), hb_steps=int(hb_steps), sr_delta=float(sr_delta))
        return out.original, out.repainted, out.settings

    @teach
    def score(prompt, files, model):
        if not files:
            raise ValueError("upload at least one image (PNG or JPEG) to score.")
        paths = [f if isinstance(f, str) else getattr(f, "name", f) for f in files]
        out = studio.score(prompt, paths, model=_none_if_blank(model))
        rows = [{"file": str(p).rsplit("/", 1)[-1], **{k: v[j] for k, v in out["scores"].items()},
                 **({"detector_all_correct": out["detector"][j]["all_correct"]} if out["detector"] else {})}
                for j, p in enumerate(paths)]
        return pd.DataFrame(rows), out

    @teach
    def vote(preferred, result):
        if not result:
            raise ValueError("generate a comparison first (Rewrite & generate), then vote.")
        means = result["scores"]["mean"]
        out = studio.vote(result["original"], result["original"], result["refined"], preferred, result["seeds"],
                          scores={w: means[w] for w in ("original", "refined")}, model=result["settings"]["model"],
                          rewriter=result["settings"]["rewriter"])
        return f"Vote saved: {preferred} preferred — {out['rows']} vote(s) in {out['votes_file']}", out["row"]

    @teach
    def edit(image, source, target, method, kind, reweight, local, steps, guidance, model, local_normalise="default",
             local_threshold=None):
        out = studio.edit(image, source, target, method=method, edit=kind, reweight=reweight, local=local,
                          num_inference_steps=_default_if_zero(steps), guidance_scale=_default_if_zero(guidance),
                          model=_none_if_blank(model),
                          local_normalise=None if local_normalise in (None, "", "default") else local_normalise,
                          local_threshold=local_threshold)
        info = {k: out[k] for k in ("metrics", "timings", "passes", "settings")}
        return out["reconstruction"], out["edit"], [(im, w) for w, im in out["maps"].items()], info

    @teach
    def api_vote(prompt: str, original: str, refined: str, preferred: str, seeds: str = "0") -> dict:
        """Append one vote (preferred = "original" or "refined") to the votes file; returns the row and count."""
        return studio.vote(prompt, original, refined, preferred, seeds)

    @teach
    def evaluate(benchmark, n_prompts, seeds, methods, progress=gr.Progress()):
        rows = studio.evaluate(benchmark, int(n_prompts), seeds, methods or list(EVAL_METHODS),
                               progress=progress_fn(progress, "methods"))
        table = pd.DataFrame(rows)
        metrics = ["all_correct", "color", "shape", "relation", "count", "style"]
        long = pd.DataFrame([{"method": r["method"], "metric": m, "value": r[m]} for r in rows for m in metrics
                             if r.get(m) is not None])
        return table, long

    def restore(history, evt: gr.SelectData):
        if evt is None or not history:
            raise gr.Error("select a row of the history table to restore its settings.")
        row = history[evt.index[0]]
        return (row["prompt"], row["negative"], row["seeds"], row["k"], row["pick"], row["steps"], row["guidance"],
                row["model"], row["rewriter"])

    # Gradio finds the event-data argument by its annotation; with postponed annotations (the __future__ import)
    # that is the string "gr.SelectData", which it cannot resolve from this function's scope, so set the class.
    restore.__annotations__["evt"] = gr.SelectData

    # ---- layout, in screen order ---------------------------------------------------------------------------
    with gr.Blocks(title=title) as demo:
        gr.Markdown(f"# {title}\nRewrite a prompt, generate the original and the rewrite with the same seeds, "
                    f"steer with attention hooks, vote, evaluate. Model: `{studio.default_model}`, rewriter: "
                    f"`{studio.default_rewriter}`.")
        history = gr.State([])
        last_result = gr.State(None)
        with gr.Row():
            model = gr.Textbox(studio.default_model, label="T2I model", scale=2,
                               info="shapes, tiny:<arch>, a local path or a cached hub id")
            rewriter = gr.Textbox(studio.default_rewriter, label="Rewriter", scale=2)
        with gr.Tab("Rewrite & generate"):
            with gr.Row():
                prompt = gr.Textbox("a red circle on the left of a blue square", label="Prompt", scale=3,
                                    elem_id="prompt")
                negative = gr.Textbox("", label="Negative prompt", scale=2)
            with gr.Row():
                seeds = gr.Textbox("0, 1", label="Seeds", info="'0, 1' or '0-3'; the same seeds for both prompts")
                randomize = gr.Button("Randomize seed", size="sm")
                k = gr.Slider(1, 8, value=4, step=1, label="Candidates (k)")
                pick = gr.Number(0, precision=0, label="Candidate to generate (0 = best)")
                steps = gr.Number(0, precision=0, minimum=0, label="Steps (0 = model default)")
                guidance = gr.Number(0, minimum=0, label="Guidance (0 = model default)")
            with gr.Accordion("Decoding", open=False):
                with gr.Row():
                    do_sample = gr.Checkbox(False, label="Sample (else beam search)")
                    num_beams = gr.Number(8, precision=0, label="Beams")
                    temperature = gr.Slider(0.1, 2.0, value=1.0, label="Temperature")
                    top_p = gr.Slider(0.1, 1.0, value=1.0, label="Top-p")
                    max_new_tokens = gr.Number(75, precision=0, label="Max new tokens")
            with gr.Row():
                rewrite_btn = gr.Button("Rewrite")
                compare_btn = gr.Button("Rewrite & generate", variant="primary", elem_id="compare")
            candidates = gr.Dataframe(label="Candidates (scored against the original prompt)", interactive=False)
            refined = gr.Textbox(label="Refined prompt", interactive=False)
            with gr.Row():
                gallery_orig = gr.Gallery(label="Original prompt", columns=2, elem_id="gallery-original", format="png")
                gallery_ref = gr.Gallery(label="Refined prompt", columns=2, elem_id="gallery-refined", format="png")
            scores = gr.Dataframe(label="Scores", interactive=False, elem_id="scores")
            with gr.Row():
                vote_orig = gr.Button("Original is better")
                vote_ref = gr.Button("Refined is better", elem_id="vote-refined")
            vote_status = gr.Markdown(elem_id="vote-status")
            vote_row = gr.JSON(visible=False)
            result_json = gr.JSON(label="Result", visible=False)
            history_table = gr.Dataframe(headers=HISTORY_COLUMNS, label="History (select a row to restore)",
                                         interactive=False, elem_id="history")
        with gr.Tab("Steer"):
            with gr.Row():
                s_prompt = gr.Textbox("a red circle above a blue square", label="Prompt", scale=3, elem_id="s-prompt")
                s_negative = gr.Textbox("", label="Negative prompt", scale=2)
                s_seeds = gr.Textbox("0", label="Seeds")
            with gr.Row():
                lpa = gr.Dropdown(LPA_PRESETS, value="", label="LPA preset (blank = off)")
                win_lo = gr.Slider(0, 1000, value=300, step=10, label="LPA window start (timestep)")
                win_hi = gr.Slider(0, 1000, value=650, step=10, label="LPA window end (timestep)")
                split_view = gr.JSON(label="Content / style split")
            with gr.Row():
                regions = gr.Textbox("", lines=3, label="Regions, one per line: x0,y0,x1,y1:prompt",
                                     elem_id="regions")
                auto_regions = gr.Checkbox(False, label="Plan regions from the prompt (auto-regions)")
                hb_steps = gr.Slider(0, 20, value=2, step=1, label="Hard-binding steps")
                sr_delta = gr.Slider(0, 1, value=1.0, step=0.05, label="Soft-refinement delta")
                sr_source = gr.Radio([MODEL_DEFAULT, "region", "base"], value=MODEL_DEFAULT,
                                     label="Soft refinement attends to",
                                     info="region: RAG (each region's prompt); base: the whole prompt, other "
                                          "regions' words masked (the shapes world's default)")
            with gr.Row():
                words = gr.Textbox("", label="Attention heatmap words (comma-separated)")
                s_steps = gr.Number(0, precision=0, minimum=0, label="Steps (0 = default)")
                s_guidance = gr.Number(0, minimum=0, label="Guidance (0 = default)")
            with gr.Row():
                preview_btn = gr.Button("Preview regions", elem_id="preview")
                steer_btn = gr.Button("Generate with hooks", variant="primary")
            with gr.Row():
                overlay = gr.Image(label="Regions", type="pil", elem_id="overlay", format="png", interactive=False)
                steer_gallery = gr.Gallery(label="Images", columns=2, format="png")
                heat_gallery = gr.Gallery(label="Attention heatmaps", columns=3, format="png")
            steer_scores = gr.Dataframe(label="Scores", interactive=False)
            steer_json = gr.JSON(visible=False)
            with gr.Accordion("Repaint one region", open=False):
                with gr.Row():
                    rp_region = gr.Textbox("0,0.5,1,1:a green triangle", label="Region x0,y0,x1,y1:prompt")
                    rp_seed = gr.Number(0, precision=0, label="Seed")
                    rp_new_seed = gr.Number(-1, precision=0, label="New seed (-1 = seed + 1)")
                    rp_btn = gr.Button("Repaint")
                with gr.Row():
                    rp_before = gr.Image(label="Before", type="pil", format="png")
                    rp_after = gr.Image(label="After", type="pil", format="png")
                rp_json = gr.JSON(visible=False)
            with gr.Accordion("Attention maps only", open=False):
                am_btn = gr.Button("Show attention maps of the words (first seed)")
                am_image = gr.Image(label="Image", type="pil", format="png")
                am_gallery = gr.Gallery(label="Maps", columns=3, format="png")
        with gr.Tab("Score"):
            sc_prompt = gr.Textbox("a red circle", label="Prompt the images are scored against")
            sc_files = gr.File(file_count="multiple", file_types=["image"], label=f"Images (≤ {MAX_FILE_SIZE} each)")
            sc_btn = gr.Button("Score")
            sc_table = gr.Dataframe(label="Scores", interactive=False)
            sc_json = gr.JSON(visible=False)
        with gr.Tab("Evaluate"):
            gr.Markdown("A small shapes-world benchmark with the exact detector: vanilla vs the rewriter vs planned "
                        "region binding (RAG's soft refinement, or `regions_base`: attending to the whole prompt).")
            with gr.Row():
                ev_bench = gr.Dropdown(["relation", "single", "count", "casual"], value="relation", label="Benchmark")
                ev_n = gr.Slider(1, 32, value=6, step=1, label="Prompts")
                ev_seeds = gr.Textbox("0", label="Seeds")
                ev_methods = gr.CheckboxGroup(list(EVAL_METHODS), value=list(EVAL_METHODS), label="Methods")
            ev_btn = gr.Button("Run benchmark", variant="primary")
            ev_table = gr.Dataframe(label="Results", interactive=False)
            ev_plot = gr.BarPlot(x="metric", y="value", color="method", label="Accuracy by method", y_lim=[0, 1])
        with gr.Tab("Edit"):
            gr.Markdown("Edit a real image by a text change: invert it under the source prompt (DDIM, null-text "
                        "inversion or DPL's leakage-repaired tokens), then prompt-to-prompt towards the target.")
            with gr.Row():
                ed_image = gr.Image(label="Image to edit", type="filepath", sources=["upload", "clipboard"])
                with gr.Column():
                    ed_source = gr.Textbox("a red circle on the left of a blue square", label="Source prompt")
                    ed_target = gr.Textbox("a red circle on the left of a green square", label="Target prompt")
                    with gr.Row():
                        ed_method = gr.Dropdown(["ddim", "nti", "dpl"], value="ddim", label="Inversion")
                        ed_kind = gr.Radio(["replace", "refine"], value="replace", label="Edit",
                                           info="replace: a word swap (equal token lengths); refine: words added")
                    with gr.Row():
                        ed_reweight = gr.Textbox("", label="Re-weight (word=scale, ...)")
                        ed_local = gr.Textbox("", label="LocalBlend words (comma-separated)")
                        ed_local_norm = gr.Dropdown(["default", "max", "minmax"], value="default",
                                                    label="LocalBlend mask",
                                                    info="default: the model's (shapes world: minmax 0.5), else max "
                                                         "0.3, the reference's; minmax where words attend diffusely")
                        ed_local_thr = gr.Number(None, minimum=0, maximum=1,
                                                 label="LocalBlend threshold (blank = the model's)")
                        ed_steps = gr.Number(0, precision=0, minimum=0, label="Steps (0 = default)")
                        ed_guidance = gr.Number(0, minimum=0, label="Guidance (0 = default; NTI/DPL need > 1)")
                    ed_btn = gr.Button("Invert & edit", variant="primary")
            with gr.Row():
                ed_recon = gr.Image(label="Reconstruction", type="pil", format="png")
                ed_out = gr.Image(label="Edit", type="pil", format="png")
                ed_maps = gr.Gallery(label="Attention per noun", columns=3, format="png")
            ed_json = gr.JSON(label="Metrics, timings, UNet passes")

        # ---- wiring ----
        decode_inputs = [do_sample, num_beams, temperature, top_p, max_new_tokens]
        randomize.click(lambda: str(random_seed()), outputs=seeds, api_visibility="private")
        rewrite_btn.click(rewrite, [prompt, seeds, k, model, rewriter, *decode_inputs], [candidates, refined],
                          api_name="rewrite", concurrency_id="models")
        compare_btn.click(compare, [prompt, negative, seeds, k, pick, steps, guidance, model, rewriter,
                                    *decode_inputs, history],
                          [gallery_orig, gallery_ref, candidates, refined, scores, result_json, history,
                           history_table, last_result], api_name="compare", concurrency_id="models")
        vote_orig.click(functools.partial(vote, "original"), last_result, [vote_status, vote_row],
                        api_visibility="private")
        vote_ref.click(functools.partial(vote, "refined"), last_result, [vote_status, vote_row],
                       api_visibility="private")
        history_table.select(restore, history, [prompt, negative, seeds, k, pick, steps, guidance, model, rewriter],
                             api_visibility="private")
        s_prompt.change(split, s_prompt, split_view, api_visibility="private")
        demo.load(split, s_prompt, split_view, api_visibility="private")
        preview_btn.click(preview, [s_prompt, regions, auto_regions],
                          overlay, api_name="region_preview")
        steer_btn.click(generate, [s_prompt, s_negative, s_seeds, s_steps, s_guidance, model, lpa, win_lo, win_hi,
                                   regions, auto_regions, hb_steps, sr_delta, words, sr_source],
                        [steer_gallery, heat_gallery, overlay, steer_scores, steer_json], api_name="generate",
                        concurrency_id="models")
        am_btn.click(attention_maps, [s_prompt, words, s_seeds, model], [am_image, am_gallery],
                     api_name="attention_maps", concurrency_id="models")
        rp_btn.click(repaint, [s_prompt, rp_region, rp_seed, rp_new_seed, model, hb_steps, sr_delta],
                     [rp_before, rp_after, rp_json], api_name="repaint", concurrency_id="models")
        sc_btn.click(score, [sc_prompt, sc_files, model], [sc_table, sc_json], api_name="score",
                     concurrency_id="models")
        ev_btn.click(evaluate, [ev_bench, ev_n, ev_seeds, ev_methods], [ev_table, ev_plot], api_name="evaluate",
                     concurrency_id="models")
        ed_btn.click(edit, [ed_image, ed_source, ed_target, ed_method, ed_kind, ed_reweight, ed_local, ed_steps,
                            ed_guidance, model, ed_local_norm, ed_local_thr], [ed_recon, ed_out, ed_maps, ed_json],
                     api_name="edit",
                     concurrency_id="models")
        # The API twin of the vote buttons, with plain inputs (gradio_client cannot pass gr.State).
        gr.api(api_vote, api_name="vote")

    return demo


def launch(demo, host: str = DEFAULT_HOST, port: int | None = DEFAULT_PORT, share: bool = False, **kwargs):
    """Queue (bounded) and serve; 127.0.0.1 unless told otherwise, no share link unless asked for."""
    demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=4)
    return demo.launch(server_name=host, server_port=port, share=share, max_file_size=MAX_FILE_SIZE,
                       show_error=True, **kwargs)


def make_parser() -> argparse.ArgumentParser:
    from t2i_prompt.cli.boundary import OneLineParser
    from t2i_prompt.cli.options import int_in

    p = OneLineParser(prog="app/app.py", description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--model", default="shapes", help="T2I model name (default: the shapes world)")
    p.add_argument("--rewriter", default="shapes:rewriter", help="rewriter model name")
    p.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int_in(1, 65535), default=DEFAULT_PORT, help="port (default 7860)")
    p.add_argument("--votes", default="outputs/app/votes.jsonl", help="JSONL file votes are appended to")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--share", action="store_true", help="also open a public gradio.live link (off by default)")
    return p


def main(args: argparse.Namespace) -> int:
    from t2i_prompt.workflows.studio import Studio

    studio = Studio(args.model, args.rewriter, votes_path=args.votes, device=args.device)
    launch(build_app(studio), host=args.host, port=args.port, share=args.share)
    return 0


if __name__ == "__main__":
    from t2i_prompt.cli.boundary import run_script

    run_script(main, make_parser)
