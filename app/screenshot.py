"""Drive the app in headless Chromium (Playwright): type a prompt, Rewrite & generate, open Steer, preview a region.

    python app/screenshot.py --out docs/images/app.png      # starts the app in-process, saves the README picture

The browser test (tests/test_app_browser.py) runs ``drive`` against a launched app and checks what it returns; the
README's screenshot is taken by the same code. Chromium is Debian's (``/usr/bin/chromium``, installed by ``make``).
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

# As root in a container Chromium needs --no-sandbox; the network flags stop it calling home on a closed network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]


def chromium_path() -> str:
    """Debian's Chromium, or ``$CHROMIUM``; a clear error when neither is there."""
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise FileNotFoundError("Chromium not found: install Debian's package (`apt-get install chromium`, done by "
                                "`make test`) or set CHROMIUM=/path/to/chromium.")
    return path


def drive(url: str, screenshot: str | Path, prompt: str = "a red circle on the left of a blue square",
          region: str = "0,0,0.5,1:a red circle", timeout_ms: int = 300_000) -> dict:
    """Run the two user journeys; returns what the page showed (image counts, score rows, vote status, overlay);
    saves ``screenshot`` (the Rewrite & generate tab with its results) and ``<stem>-steer.png``."""
    from playwright.sync_api import sync_playwright

    screenshot = Path(screenshot)
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1500})
            page.set_default_timeout(timeout_ms)
            page.goto(url)
            page.locator("#prompt textarea").fill(prompt)
            page.locator("#compare").click()
            page.wait_for_function(
                "() => document.querySelectorAll('#gallery-refined img').length >= 2 &&"
                " document.querySelectorAll('#scores [role=row]').length >= 5")  # header + 2 prompts x 2 seeds
            shown = {
                "original_images": page.locator("#gallery-original img").count(),
                "refined_images": page.locator("#gallery-refined img").count(),
                "score_rows": page.locator("#scores [role=row]").count() - 1,
                "scores_text": page.locator("#scores").inner_text(),
            }
            page.screenshot(path=str(screenshot), full_page=False)
            page.locator("#vote-refined").click()
            page.wait_for_function("() => document.querySelector('#vote-status').innerText.includes('Vote saved')")
            shown["vote_status"] = page.locator("#vote-status").inner_text()
            # history: change the prompt, select the run's row, and the row's settings come back
            page.locator("#prompt textarea").fill("something else")
            page.locator("#history [role=row]").nth(1).locator("[role=gridcell], td").first.click()
            page.wait_for_function("(p) => document.querySelector('#prompt textarea').value === p", arg=prompt)
            shown["restored_prompt"] = page.locator("#prompt textarea").input_value()

            page.get_by_role("tab", name="Steer").click()
            page.locator("#regions textarea").fill(region)
            page.locator("#preview").click()
            page.wait_for_selector("#overlay img")
            shown["overlay_shown"] = page.locator("#overlay img").count() == 1
            page.screenshot(path=str(screenshot.with_name(screenshot.stem + "-steer.png")))
        finally:
            browser.close()
    return shown


def main(args: argparse.Namespace) -> int:
    import importlib.util
    import tempfile

    from t2i_prompt.workflows.studio import Studio

    spec = importlib.util.spec_from_file_location("t2i_app", Path(__file__).with_name("app.py"))
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    scratch = Path(tempfile.mkdtemp(prefix="t2i_app_"))  # the journey's vote and the second screenshot go here
    demo = app.build_app(Studio(votes_path=scratch / "votes.jsonl"))
    _, url, _ = app.launch(demo, port=args.port, prevent_thread_lock=True, quiet=True)
    try:
        shown = drive(url, scratch / "app.png")
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(scratch / "app.png", args.out)
        print(shown, f"-> {args.out}", sep="\n")
    finally:
        demo.close()
    return 0


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--out", default="docs/images/app.png", help="screenshot file")
    p.add_argument("--port", type=int, default=None, help="port of the in-process app (default: a free one)")
    return p


if __name__ == "__main__":
    from t2i_prompt.cli.boundary import run_script

    run_script(main, make_parser)
