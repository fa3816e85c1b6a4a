"""Browser timing of the Segment page: ``python -m segdemo bench --ui``.

Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright) at 1280x800
against a fresh ``streamlit run app.py`` on 127.0.0.1:

* **first render**: from starting the server process to the home page's title
  painted in the browser (the goal of issue 10: <= 4 s), and **home complete**:
  to the page's last element (the model table) painted — the header comes first,
  while torch and torchvision still load;
* **upload to result**: setting the file input to the result picture loaded;
* **display-only change**: clicking a view option or a class checkbox until the
  new picture is loaded and painted (``img.complete`` after its ``src`` changed,
  then two animation frames), median of several, for a 1-MP and a 12-MP photo
  (goals: <= 250 ms and <= 1 s); and the entropy view of the 12-MP photo.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

from segdemo import config, i18n
from segdemo.serving.load_bench import Server

CHROMIUM = "/usr/bin/chromium"
RESULT = '[data-testid="stMain"] img[data-testid="segdemo-result-image"]'
UPLOAD = '.st-key-segment_uploader input[type="file"]'
HOME_LAST = '[data-testid="stMain"] [data-testid="stTable"]'  # the model list, the home page's last table
REPEATS = 5
GOALS_MS = {"first_render": 4000.0, "display_1mp": 250.0, "display_12mp": 1000.0}

OLD_FRAME = 'iframe[title*="streamlit_image_coordinates"]'  # main before issue 15: the picture inline


def _result(page):  # noqa: ANN001, ANN201
    """The result picture: segdemo's component, or (older versions) the click component's iframe."""
    if page.locator(OLD_FRAME).count():
        return page.frame_locator(OLD_FRAME).last.locator("img").first
    return page.locator(RESULT).first


def _photo(path: Path, megapixels: float) -> Path:
    """The gallery's coffee photo resized to about ``megapixels`` (a real photo, JPEG q92)."""
    from PIL import Image

    img = Image.open(config.SAMPLES_DIR / "coffee.jpg").convert("RGB")
    scale = (megapixels * 1e6 / (img.width * img.height)) ** 0.5
    out = path / f"coffee_{megapixels:g}mp.jpg"
    img.resize((round(img.width * scale), round(img.height * scale))).save(out, quality=92)
    return out


def _src(page) -> str:  # noqa: ANN001
    try:
        return _result(page).get_attribute("src", timeout=1000) or ""
    except Exception:  # noqa: BLE001 - the picture is being replaced
        return ""


def _timed_change(page, action: Callable[[], None], timeout_s: float = 180.0) -> float:  # noqa: ANN001
    """Milliseconds from ``action`` to a new picture loaded (``complete``) and two frames painted."""
    old = _src(page)
    t0 = time.perf_counter()
    action()
    deadline = t0 + timeout_s
    while time.perf_counter() < deadline:
        try:
            img = _result(page)
            if img.get_attribute("src", timeout=1000) not in ("", None, old) and img.evaluate(
                    "i => new Promise(r => (i.complete && i.naturalWidth > 0) ? requestAnimationFrame("
                    "() => requestAnimationFrame(() => r(true))) : r(false))"):
                return (time.perf_counter() - t0) * 1000
        except Exception:  # noqa: BLE001 - the frame or element is being replaced
            pass
        time.sleep(0.01)
    raise TimeoutError("the picture did not change")


def _view(page, view: str) -> Callable[[], None]:  # noqa: ANN001
    label = i18n.t(f"segment.view.{view}", "ko")
    return lambda: page.locator('[data-testid="stMain"] [data-testid="stRadio"] label').filter(has_text=label).click()


def _toggle_first_class(page) -> Callable[[], None]:  # noqa: ANN001
    return lambda: page.locator('[class*="st-key-show_"] label').first.click()


def _display_changes(page) -> list[float]:  # noqa: ANN001
    times = []
    for i in range(REPEATS):
        times.append(_timed_change(page, _view(page, "mask" if i % 2 == 0 else "overlay")))
        time.sleep(0.3)
    for _ in range(2):
        times.append(_timed_change(page, _toggle_first_class(page)))
        time.sleep(0.3)
    return times


def run_ui(log: Callable[[str], None] = print) -> dict[str, float]:
    """Run the browser timings; returns milliseconds by figure name."""
    from playwright.sync_api import sync_playwright

    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        photos = {"1mp": _photo(Path(tmp), 1.0), "12mp": _photo(Path(tmp), 12.0)}
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        page = browser.new_page(viewport={"width": 1280, "height": 800}, locale="ko-KR")
        page.set_default_timeout(180_000)
        t0 = time.perf_counter()
        with Server() as server:
            page.goto(server.url)
            page.locator("h1").first.wait_for()
            figures["first_render"] = (time.perf_counter() - t0) * 1000
            page.locator(HOME_LAST).first.wait_for()
            figures["home_complete"] = (time.perf_counter() - t0) * 1000
            log(f"first render {figures['first_render']:.0f} ms, home complete {figures['home_complete']:.0f} ms")
            for name, path in photos.items():
                page.goto(f"{server.url}/Segment")  # a new session per photo
                page.locator(UPLOAD).wait_for(state="attached")
                time.sleep(1.0)
                figures[f"upload_{name}"] = _timed_change(page, lambda: page.locator(UPLOAD).set_input_files(str(path)))
                time.sleep(1.0)
                changes = _display_changes(page)
                figures[f"display_{name}"] = statistics.median(changes)
                figures[f"display_{name}_max"] = max(changes)
                log(f"{name}: upload {figures[f'upload_{name}']:.0f} ms, display median "
                    f"{figures[f'display_{name}']:.0f} ms")
                if name == "12mp":
                    figures["entropy_12mp"] = _timed_change(page, _view(page, "entropy"))
        browser.close()
    return figures


def format_ui(figures: dict[str, float]) -> str:
    """The figures with the goals of issue 10."""
    lines = [f"{name:>20}: {ms:8.0f} ms" + (f"  (goal <= {GOALS_MS[name]:.0f} ms: "
                                           f"{'met' if ms <= GOALS_MS[name] else 'MISSED'})" if name in GOALS_MS else "")
             for name, ms in figures.items()]
    lines.append("display = input event to the new picture loaded and painted (median of "
                 f"{REPEATS} view changes and 2 class toggles); first render = server start to the title painted; "
                 "home complete = to the model table painted")
    return "\n".join(lines)
