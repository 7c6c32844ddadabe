"""``t2i-prompt compbench``: T2I-CompBench(++) in the official layout — generate, score, report, compare, run.

    t2i-prompt compbench run --model shapes --categories color spatial numeracy --images-per-prompt 2 --out runs/v
    t2i-prompt compbench run --model shapes --rewriter shapes:rewriter --out runs/rw     # + a prompt rewriter
    t2i-prompt compbench run --model shapes --auto-regions --out runs/regions            # + region binding
    t2i-prompt compbench generate --preset compbench-sd2 --out runs/sd2                  # SD-2-base, DDIM 30, CFG 7.5
    t2i-prompt compbench score --run runs/sd2 --categories color spatial                 # any samples folder
    t2i-prompt compbench compare runs/v runs/rw runs/regions                             # paired bootstrap 95 % CI
    torchrun --nproc_per_node 8 eval/t2i_compbench.py run --model runwayml/stable-diffusion-v1-5 --out runs/sd15

Images go to ``<out>/<category>/samples/<prompt>_<NNNNNN>.png`` (seeds 42.. per prompt), records to
``images.jsonl``; scores to the official ``vqa_result.json`` folders, then ``summary.json`` / ``.md`` / ``.png``.
Reruns and restarts compute only what is missing. The original prompt names each file and is what is scored.
"""

from __future__ import annotations

import argparse
import json

from . import options


def _prompt_args(parser) -> None:
    parser.add_argument("--categories", nargs="+", default=None, metavar="CAT",
                        help="categories (default: all 8; the shapes prompt set: color shape spatial numeracy complex)")
    parser.add_argument("--prompts", default=None, metavar="SET",
                        help="compbench (the official val lists), shapes, or a folder of <category>_val.txt files "
                             "(default: shapes for the shapes model, else compbench)")


def _generation_args(parser) -> None:
    options.add_model_args(parser, " (or from --preset)")
    parser.add_argument("--preset", default=None, choices=["compbench-sd2"],
                        help="reference settings: SD-2-base, DDIM 30 steps, CFG 7.5 (explicit flags still win)")
    parser.add_argument("--images-per-prompt", type=options.int_in(1, 1000), default=10, metavar="N",
                        help="images per prompt, seeds 42..42+N-1 (default 10, the official protocol)")
    parser.add_argument("--batch-size", type=options.int_in(1, 256), default=10, help="images per pipeline call")
    options.add_sampling_args(parser, negative=False)
    options.add_rewriter_args(parser, k_default=1)
    options.add_hook_args(parser)


def _score_args(parser) -> None:
    parser.add_argument("--backend", default=None, choices=["transformers", "shapes"],
                        help="evaluator models: transformers (BLIP-VQA, OWLv2, DPT-hybrid, CLIP) or shapes "
                             "(default: shapes for the shapes model or prompt set, else transformers)")
    for part, flag in (("vqa", "--vqa-model"), ("detector", "--detector-model"), ("depth", "--depth-model"),
                       ("clip", "--clip-model")):
        parser.add_argument(flag, default=None, metavar="NAME", help=f"{part} model: hub id or local directory")
    parser.add_argument("--detector-threshold", type=options.float_in(0.0, 1.0), default=None, metavar="T",
                        help="detection score cut (default 0.1 for OWLv2; UniDet's official cut was 0.5)")
    parser.add_argument("--score-batch-size", type=options.int_in(1, 1024), default=16, metavar="N",
                        help="images per evaluator forward pass (default 16)")


def add_parser(sub) -> None:
    parser = options.subcommand(sub, "compbench", "T2I-CompBench evaluation: generate, score, report, compare",
                                __doc__)
    cb = parser.add_subparsers(dest="compbench_command", required=True, metavar="SUBCOMMAND")
    gen = cb.add_parser("generate", help="generate the val prompts in the official layout")
    _prompt_args(gen)
    _generation_args(gen)
    options.add_device_args(gen)
    gen.add_argument("--out", required=True, help="run folder (resumed if it exists)")
    options.add_output_args(gen, None)
    gen.set_defaults(func=run_generate)

    score = cb.add_parser("score", help="score <run>/<category>/samples/ and write the summary")
    score.add_argument("--run", required=True, help="run folder holding <category>/samples/")
    _prompt_args(score)
    _score_args(score)
    options.add_device_args(score, dtype=False)
    options.add_output_args(score, None)
    score.set_defaults(func=run_score)

    rep = cb.add_parser("report", help="rewrite summary.json / .md / .png from the scored categories")
    rep.add_argument("--run", required=True)
    options.add_output_args(rep, None, progress=False)
    rep.set_defaults(func=run_report)

    cmp_ = cb.add_parser("compare", help="side-by-side table with paired bootstrap 95 % intervals")
    cmp_.add_argument("runs", nargs="+", metavar="RUN")
    options.add_output_args(cmp_, None, progress=False)
    cmp_.set_defaults(func=run_compare)

    run = cb.add_parser("run", help="generate + score + summary in one go")
    _prompt_args(run)
    _generation_args(run)
    _score_args(run)
    options.add_device_args(run)
    run.add_argument("--out", required=True, help="run folder (resumed if it exists)")
    options.add_output_args(run, None)
    run.set_defaults(func=run_all)


def _selection(args):
    from ..evaluate import categories, runner

    generating = hasattr(args, "images_per_prompt")
    shapes_model = generating and not args.preset and args.model in (None, "shapes")
    prompt_set = args.prompts or ("shapes" if shapes_model else "compbench")
    categories.prompt_set_dir(prompt_set)
    names = categories.check_categories(args.categories or runner.default_categories(prompt_set))
    return prompt_set, names


def _plan(args, prompt_set, names):
    from ..evaluate import categories, runner

    for n in names:
        categories.category_prompts(prompt_set, n)
    if args.k != 1:
        raise ValueError(f"-k {args.k}: compbench generates from the first rewrite candidate only; drop -k.")
    spec = options.hook_spec(args)
    decoding = {**options.rewriter_decoding(args), "system_prompt": args.system_prompt}
    out = options.check_out_dir(args.out)
    return runner.make_plan(out, args.model, args.images_per_prompt, args.preset, args.steps, args.guidance,
                            args.height, args.width, args.device, args.dtype, args.batch_size, args.rewriter,
                            decoding, spec, progress=not args.no_progress)


def _backend(args, prompt_set, names):
    from ..evaluate import backends, scoring

    shapes_model = hasattr(args, "preset") and not args.preset and args.model in (None, "shapes")
    name = args.backend or ("shapes" if str(prompt_set) == "shapes" or shapes_model else "transformers")
    models = {"vqa": args.vqa_model, "detector": args.detector_model, "depth": args.depth_model,
              "clip": args.clip_model}
    return backends.build_backend(name, models, scoring.needed_parts(names), device=args.device,
                                  batch_size=args.score_batch_size, detector_threshold=args.detector_threshold)


def _print(args, result: dict, text: str) -> None:
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print(text)


def run_generate(args: argparse.Namespace) -> int:
    from ..evaluate import runner

    prompt_set, names = _selection(args)
    plan = _plan(args, prompt_set, names)
    counts = runner.generate(plan, names, prompt_set)
    _print(args, counts, f"{plan.run_dir}: {counts['rendered']} images rendered, {counts['reused']} already there")
    return 0


def _score_text(result: dict) -> str:
    lines = [f"{n:>12}: {s:.4f}" for n, s in result["scores"].items()]
    return "\n".join(lines + [f"({result['counts']['scored']} images scored, {result['counts']['reused']} reused)"])


def run_score(args: argparse.Namespace) -> int:
    from ..evaluate import runner

    prompt_set, names = _selection(args)
    backend = _backend(args, prompt_set, names)
    result = runner.score(args.run, names, backend, prompt_set, progress=not args.no_progress)
    _print(args, result, _score_text(result))
    return 0


def run_all(args: argparse.Namespace) -> int:
    from ..evaluate import runner

    prompt_set, names = _selection(args)
    plan = _plan(args, prompt_set, names)
    backend = _backend(args, prompt_set, names)
    counts = runner.generate(plan, names, prompt_set)
    result = runner.score(plan.run_dir, names, backend, prompt_set, progress=not args.no_progress)
    result["generation"] = counts
    _print(args, result, _score_text(result) + f"\n({counts['rendered']} images rendered, {counts['reused']} reused)")
    return 0


def run_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..evaluate import report

    run = Path(args.run)
    previous = run / report.SUMMARY_JSON
    if not previous.is_file():
        raise FileNotFoundError(f"{previous} is missing; score the run first (t2i-prompt compbench score --run {run}).")
    old = json.loads(previous.read_text())
    extra = {k: v for k, v in old.items() if k not in ("evaluator", "categories", "generation")}
    summary = report.write_summary(run, {}, old.get("evaluator", "unknown"), extra)
    _print(args, summary, (run / report.SUMMARY_MD).read_text().rstrip())
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from ..evaluate import report

    result = report.compare(args.runs)
    _print(args, result, report.format_comparison(result))
    return 0



def config_argv(path: str) -> list[str]:
    """``eval/configs/*.yaml`` -> CLI arguments: ``command`` (generate / score / run) and ``args``, a mapping of long
    flag names to values (lists for multi-value flags, true for switches); flags on the command line come after and
    win. Unknown flags are argparse errors like any typo."""
    from pathlib import Path

    import yaml

    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"--config {path} does not exist (a YAML file like eval/configs/compbench_shapes.yaml).")
    data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict) or set(data) - {"command", "args"} or not isinstance(data.get("args", {}), dict):
        raise ValueError(f"--config {path}: expected the keys 'command' and 'args' (a mapping of flag: value).")
    argv = [str(data.get("command", "run"))]
    for flag, value in (data.get("args") or {}).items():
        if value is False or value is None:
            continue
        argv.append(f"--{flag}")
        if value is not True:
            argv += [str(v) for v in value] if isinstance(value, list) else [str(value)]
    return argv
