"""The operator console beside a sim graph, for tests, benches and the README's pictures (docs/console.md):
console_node in its own process (as `legion console` and the launch files' console:=true run it), its URL
read from its log, and headless Debian chromium driven by Playwright (never a downloaded browser).

    python -m legion_core.tools.console_graph --screenshots docs/img   # the README's console pictures
"""

from __future__ import annotations

import argparse
import re
import shutil
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
"""Debian's chromium (`make browser` installs it)."""
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip
"""No sandbox (root in CI), no background traffic: this machine's network is closed and chromium would retry
its update and sync hosts (docs/console.md)."""
URL_PATTERN = re.compile(r"console serving on (http://[\d.]+:\d+)")
"""What console_node logs once it listens (legion_ros/console_node.py)."""


def chromium_path() -> str:
    path = shutil.which("chromium") or CHROMIUM
    if not Path(path).exists():
        raise RuntimeError("Debian's chromium is missing: `make browser` installs it (make test does)")
    return path


def console_url(log: Path, proc=None, timeout_s: float = 90.0) -> str:
    """The URL console_node serves, from its log; RuntimeError with the log's tail when it exits or stays
    silent."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        m = URL_PATTERN.search(log.read_text(errors="replace") if log.exists() else "")
        if m:
            return m.group(1)
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"console_node exited ({proc.returncode}): {log.read_text()[-3000:]}")
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
    raise RuntimeError(f"console_node did not serve within {timeout_s} s: {tail}")


def start_console(bundle: str | Path, scene: str, log: Path, token_file: str | Path = "", **params):
    """console_node in its own process on a free port; returns (process, URL)."""
    from legion_core.tools.ros_env import start_composed

    p = {"console.bundle": str(Path(bundle).resolve()), "console.port": 0, "console.scene": scene,
         "console.token_file": str(token_file), **{f"console.{k}": v for k, v in params.items()}}  # fmt: skip
    proc = start_composed("console", p, log)
    return proc, console_url(log, proc)


def screenshots(out_dir: Path, placement: int = 0) -> list[Path]:
    """The demo chain commanded from the console page, pictured while it runs and when it is done."""
    import tempfile

    from playwright.sync_api import sync_playwright

    from legion_core.tools.demo import DEFAULT_MODEL
    from legion_core.tools.longhorizon import DEFAULT_COMMAND, ChainRunner
    from legion_core.tools.ros_env import stop_process_group

    tmp = Path(tempfile.mkdtemp(prefix="legion_console_"))
    token = "readme-pictures-token-0123456789"
    (tmp / "token").write_text(token)
    out_dir.mkdir(parents=True, exist_ok=True)
    runner = ChainRunner(DEFAULT_MODEL, tmp / "graph.log")
    proc, url = start_console(DEFAULT_MODEL, runner.scene, tmp / "console.log", tmp / "token")
    shots = []
    try:
        runner.reset_scene(placement)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.goto(url)

            def wait(js: str, timeout_s: float) -> None:
                end = time.monotonic() + timeout_s
                while time.monotonic() < end and not page.evaluate(js):
                    runner.spin(0.1)

            page.fill("#token", token)
            page.click("#auth-button")
            page.fill("#command-text", DEFAULT_COMMAND)
            page.click("#preview-button")
            wait("document.querySelectorAll('#plan .plan-step').length > 0", 30)
            shots.append(out_dir / "console_plan.png")
            page.screenshot(path=str(shots[-1]))
            page.click("#confirm-button")
            wait("document.querySelectorAll('#steps li[data-state=\"done\"]').length >= 1", 120)
            runner.spin(3.0)
            shots.append(out_dir / "console_running.png")
            page.screenshot(path=str(shots[-1]))
            wait("['succeeded','failed','cancelled'].includes(document.querySelector('#command-phase')"
                 ".textContent.trim())", 300)  # fmt: skip
            runner.spin(1.0)
            shots.append(out_dir / "console_done.png")
            page.screenshot(path=str(shots[-1]), full_page=True)
            browser.close()
    finally:
        stop_process_group(proc, 10.0)
        runner.close()
    return shots


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="The operator console on the sim graph, pictured (docs/console.md).\n\nexample:\n"
        "  python -m legion_core.tools.console_graph --screenshots docs/img",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--screenshots", type=Path, required=True, help="directory for the PNG files")
    ap.add_argument("--placement", type=int, default=0, help="scene placement of the demo chain (default 0)")
    args = ap.parse_args(argv)
    for path in screenshots(args.screenshots, args.placement):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
