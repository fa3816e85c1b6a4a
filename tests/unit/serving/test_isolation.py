"""Concurrent sessions never see each other's image, result, class toggles or language (issue 15 #5).

Four sessions on one real server, speaking Streamlit's protocol: two Korean, two English; two
upload the cat, two the coffee photo, each under its own file name, all at the same moment; one
then hides a class while another changes its view. Each must only ever receive its own.
"""

from __future__ import annotations

import asyncio
import io
import urllib.request

import pytest
from PIL import Image

from segdemo import config, i18n
from segdemo.serving.load_bench import Server
from segdemo.serving.protocol import StreamlitSession

pytestmark = pytest.mark.slow

PLAN = [("ko", "cat.jpg"), ("en", "cat.jpg"), ("ko", "coffee.jpg"), ("en", "coffee.jpg")]


def _names(i: int) -> str:
    return f"iso{i}_{PLAN[i][1]}"


async def _scenario(url: str) -> list[dict]:
    sessions = [StreamlitSession(url, "Segment") for _ in PLAN]
    runs: list[dict] = [{"texts": [], "components": []} for _ in PLAN]

    def note(i: int, run) -> None:  # noqa: ANN001
        assert run.ok, (i, run.exceptions, run.timed_out)
        runs[i]["texts"] += run.texts
        runs[i]["components"] += run.components

    async def prepare(i: int) -> None:
        s = sessions[i]
        await s.connect()
        note(i, await s.rerun())
        if PLAN[i][0] == "en":
            s.set_widget(s.widget_id("lang"), string_value=i18n.LANGUAGES["en"])
            runs[i]["texts"].clear()  # from here on, everything this session receives must be English
            note(i, await s.rerun())

    await asyncio.gather(*(prepare(i) for i in range(len(PLAN))))

    async def upload(i: int) -> None:
        data = (config.SAMPLES_DIR / PLAN[i][1]).read_bytes()
        run = await sessions[i].upload("segment_uploader", _names(i), data)
        note(i, run)
        runs[i]["src_after_upload"] = run.images[-1]

    await asyncio.gather(*(upload(i) for i in range(len(PLAN))))

    async def hide_a_class() -> None:
        s = sessions[0]
        box = next(wid for key, wid in s.widget_ids.items() if key.startswith("show_"))
        shown = s.elements[box].checkbox  # the first (largest) class, ticked: untick it
        s.set_widget(box, bool_value=not (shown.value if shown.set_value else shown.default))
        run = await s.rerun(fragment_id=s.fragment_of.get(box, ""))
        note(0, run)
        runs[0]["src_after_toggle"] = run.images[-1]

    async def same_view_again() -> None:
        s = sessions[1]
        view = s.widget_id("segment_view")
        s.set_widget(view, string_value=s.elements[view].radio.options[0])  # overlay, as before
        run = await s.rerun(fragment_id=s.fragment_of.get(view, ""))
        note(1, run)
        runs[1]["src_after_toggle"] = run.images[-1]

    await asyncio.gather(hide_a_class(), same_view_again())
    for s in sessions:
        await s.close()
    return runs


def _size(url: str, src: str) -> tuple[int, int]:
    with urllib.request.urlopen(url + src, timeout=30) as response:
        return Image.open(io.BytesIO(response.read())).size


def test_concurrent_sessions_only_ever_receive_their_own() -> None:
    with Server() as server:
        runs = asyncio.run(_scenario(server.url))
        sizes = {i: _size(server.url, runs[i]["src_after_upload"]) for i in range(len(PLAN))}
    for i, (lang, photo) in enumerate(PLAN):
        received = "\n".join(runs[i]["texts"] + runs[i]["components"])
        assert _names(i) in received, f"session {i} sees its own file name"
        others = [_names(j) for j in range(len(PLAN)) if j != i]
        assert not [n for n in others if n in received], f"session {i} received another session's file"
        other_lang = "en" if lang == "ko" else "ko"
        assert i18n.t("page.segment", lang) in received
        assert i18n.t("page.segment", other_lang) not in received, f"session {i} got the other language"
        assert i18n.t("segment.classes", other_lang) not in received
    # The result pictures: the same photo and settings give the same served picture, different ones not.
    src = [r["src_after_upload"] for r in runs]
    assert src[0] == src[1] and src[2] == src[3] and src[0] != src[2]
    assert sizes[0] == (451, 300) and sizes[2] == (600, 400), "each got a picture of its own photo"
    # Session 0 hid a class: its picture changed; session 1 (same photo, same moment) kept its own.
    assert runs[0]["src_after_toggle"] != src[0]
    assert runs[1]["src_after_toggle"] == src[1], "another session's class toggle never reaches this one"
