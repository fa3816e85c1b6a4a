"""A minimal Streamlit client: the browser's websocket protocol, without a browser.

It does what the frontend does for one browser session, so a benchmark can run
many sessions at almost no client cost:

1. ``GET /_stcore/health`` sets the XSRF cookie;
2. websocket ``/_stcore/stream`` (subprotocols ``streamlit`` + the XSRF token),
   ``BackMsg.rerun_script`` with the page name and every widget state so far;
3. an upload: ``BackMsg.file_urls_request`` -> ``ForwardMsg.file_urls_response``
   gives the upload URL, ``PUT`` (multipart, ``X-Xsrftoken`` header), then a
   rerun with the uploader's ``file_uploader_state_value``;
4. ``ForwardMsg.script_finished`` ends a run; an ``exception`` element is an error.

The protobuf classes come from the installed streamlit package; they are
imported lazily so ``segdemo`` keeps importing without Streamlit.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import Any

RUN_TIMEOUT_S = 120.0
TRACE = False  # print each message's arrival (debugging the benchmark)  # one script run; a rerun that takes longer is an error


@dataclass
class RunResult:
    """What one script run sent back."""

    seconds: float
    finished: bool = False
    status: int = -1  # ScriptFinishedStatus: 0 whole run, 3 fragment run, 1 compile error, 2 ended for a rerun
    exceptions: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # markdown/heading/alert/caption bodies
    images: list[str] = field(default_factory=list)  # media URLs and component image sources
    component_bytes: int = 0  # bytes of component arguments (inline payloads)
    components: list[str] = field(default_factory=list)  # JSON data of st.components.v2 elements
    bytes_received: int = 0
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        """Finished, without an exception element."""
        return self.finished and self.status in (0, 3) and not self.exceptions and not self.timed_out


def _proto() -> Any:
    from streamlit.proto import BackMsg_pb2, ForwardMsg_pb2  # noqa: F401 - lazily, see module doc

    return BackMsg_pb2, ForwardMsg_pb2


class StreamlitSession:
    """One browser session on a Streamlit server at ``base_url`` (``http://127.0.0.1:PORT``)."""

    def __init__(self, base_url: str, page_name: str = "") -> None:
        self.base_url = base_url.rstrip("/")
        self.page_name = page_name
        self.session_id = ""
        self.widgets: dict[str, Any] = {}  # id -> WidgetState (every widget state the "user" set)
        self.widget_ids: dict[str, str] = {}  # user key (suffix of the id) -> id, from the deltas
        self.fragment_of: dict[str, str] = {}  # widget id -> fragment id of the delta that made it
        self.elements: dict[str, Any] = {}  # widget id -> last element proto
        self._ws: Any = None
        self._xsrf = ""
        self._cookie = ""
        self._responses: dict[str, Any] = {}
        self._queue: asyncio.Queue = asyncio.Queue()
        self._reader: asyncio.Task | None = None

    # ------------------------------------------------------------ connection

    async def connect(self) -> None:
        """Health check (XSRF cookie), then the websocket."""
        import websockets

        self._cookie, self._xsrf = await asyncio.to_thread(self._health)
        host = urllib.parse.urlsplit(self.base_url).netloc
        self._ws = await websockets.connect(
            f"ws://{host}/_stcore/stream", subprotocols=["streamlit", self._xsrf] if self._xsrf else ["streamlit"],
            additional_headers={"Cookie": self._cookie, "Origin": self.base_url}, max_size=None,
            open_timeout=30, ping_interval=None)
        self._reader = asyncio.create_task(self._read())

    def _health(self) -> tuple[str, str]:
        import urllib.request

        with urllib.request.urlopen(f"{self.base_url}/_stcore/health", timeout=30) as response:
            cookies = response.headers.get_all("Set-Cookie") or []
        for cookie in cookies:
            name, _, rest = cookie.partition("=")
            if name.strip() == "_streamlit_xsrf":
                value = rest.split(";", 1)[0]
                return f"_streamlit_xsrf={value}", urllib.parse.unquote(value).strip('"')
        return "", ""

    async def close(self) -> None:
        """Close the websocket (the server then ends the session)."""
        if self._reader:
            self._reader.cancel()
        if self._ws is not None:
            await self._ws.close()

    async def _read(self) -> None:
        _, fwd = _proto()
        async for data in self._ws:
            msg = fwd.ForwardMsg()
            msg.ParseFromString(data)
            if msg.WhichOneof("type") == "new_session":
                self.session_id = msg.new_session.initialize.session_id
            if msg.WhichOneof("type") == "file_urls_response":
                self._responses[msg.file_urls_response.response_id] = msg.file_urls_response
            await self._queue.put((msg, len(data)))

    # ------------------------------------------------------------ runs

    async def _send(self, back: Any) -> None:
        await self._ws.send(back.SerializeToString())

    async def rerun(self, fragment_id: str = "") -> RunResult:
        """Send ``rerun_script`` with every widget state; collect until ``script_finished``."""
        back_msg, _ = _proto()
        msg = back_msg.BackMsg()
        msg.rerun_script.page_name = self.page_name
        msg.rerun_script.query_string = ""
        if fragment_id:
            msg.rerun_script.fragment_id = fragment_id
        for state in self.widgets.values():
            msg.rerun_script.widget_states.widgets.append(state)
        while not self._queue.empty():  # anything left over from an earlier run
            self._queue.get_nowait()
        t0 = time.perf_counter()
        await self._send(msg)
        return await self._collect(t0)

    async def _collect(self, t0: float) -> RunResult:
        result = RunResult(seconds=0.0)
        deadline = t0 + RUN_TIMEOUT_S
        while True:
            try:
                msg, size = await asyncio.wait_for(self._queue.get(), max(0.01, deadline - time.perf_counter()))
            except asyncio.TimeoutError:
                result.timed_out = True
                break
            result.bytes_received += size
            kind = msg.WhichOneof("type")
            if TRACE:
                print(f"  {time.perf_counter() - t0:7.3f} {kind} {msg.delta.new_element.WhichOneof('type') if kind == 'delta' else ''}")
            if kind == "delta":
                self._note_delta(msg, result)
            elif kind == "script_finished":
                result.status = int(msg.script_finished)
                result.finished = True
                break
        result.seconds = time.perf_counter() - t0
        return result

    def _note_delta(self, msg: Any, result: RunResult) -> None:
        delta = msg.delta
        if delta.WhichOneof("type") != "new_element":
            return
        el = delta.new_element
        kind = el.WhichOneof("type")
        if kind == "exception":
            result.exceptions.append(f"{el.exception.type}: {el.exception.message}")
            return
        if kind in ("markdown", "heading", "alert", "text", "code"):
            body = getattr(el, kind).body
            result.texts.append(body)
        elif kind == "imgs":
            result.images += [img.url for img in el.imgs.imgs]
            result.texts += [img.caption for img in el.imgs.imgs if img.caption]
        elif kind == "component_instance":
            args = el.component_instance.json_args
            result.component_bytes += len(args)
            result.images.append("sha1:" + hashlib.sha1(args.encode()).hexdigest())
        elif kind == "bidi_component":
            payload = el.bidi_component.SerializeToString()
            result.component_bytes += len(payload)
            result.components.append(el.bidi_component.json)
            try:
                src = json.loads(el.bidi_component.json or "{}").get("src")
            except (ValueError, AttributeError):
                src = None
            result.images.append(src or "sha1:" + hashlib.sha1(payload).hexdigest())
        widget = getattr(el, kind, None)
        wid = getattr(widget, "id", "") if widget is not None else ""
        if isinstance(wid, str) and wid:
            self.elements[wid] = el
            key = wid.rsplit("-", 1)[-1] if wid.startswith("$$ID") else wid
            self.widget_ids[key] = wid
            self.fragment_of[wid] = delta.fragment_id
            label = getattr(widget, "label", "")
            if label:
                result.texts.append(label)

    def widget_id(self, key_part: str) -> str:
        """The id of the widget whose user key contains ``key_part`` (KeyError when absent)."""
        for key, wid in self.widget_ids.items():
            if key_part in key:
                return wid
        raise KeyError(f"no widget with a key containing {key_part!r}; seen {sorted(self.widget_ids)}")

    def set_widget(self, wid: str, **value: Any) -> None:
        """Set one widget's state, e.g. ``set_widget(id, int_value=1)``."""
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        state = WidgetState(id=wid)
        for name, v in value.items():
            if name == "string_array_value":
                state.string_array_value.data.extend(v)
            else:
                setattr(state, name, v)
        self.widgets[wid] = state

    async def upload(self, uploader_key: str, name: str, data: bytes, mime: str = "image/jpeg") -> RunResult:
        """Upload ``data`` as file ``name`` to the uploader with key ``uploader_key``, then rerun."""
        import urllib.request

        back_msg, _ = _proto()
        wid = self.widget_id(uploader_key)
        request_id = uuid.uuid4().hex
        msg = back_msg.BackMsg()
        msg.file_urls_request.request_id = request_id
        msg.file_urls_request.session_id = self.session_id
        msg.file_urls_request.file_names.append(name)
        t0 = time.perf_counter()
        await self._send(msg)
        while request_id not in self._responses:
            if time.perf_counter() - t0 > RUN_TIMEOUT_S:
                return RunResult(seconds=time.perf_counter() - t0, timed_out=True)
            await asyncio.sleep(0.005)
        urls = self._responses.pop(request_id).file_urls[0]
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
                f"Content-Type: {mime}\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
        url = urls.upload_url if urls.upload_url.startswith("http") else self.base_url + urls.upload_url
        request = urllib.request.Request(url, data=body, method="PUT", headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}", "X-Xsrftoken": self._xsrf,
            "Cookie": self._cookie})

        def put() -> None:
            with urllib.request.urlopen(request, timeout=RUN_TIMEOUT_S) as response:
                response.read()

        await asyncio.to_thread(put)
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        state = WidgetState(id=wid)
        info = state.file_uploader_state_value.uploaded_file_info.add()
        info.name, info.size, info.file_id = name, len(data), urls.file_id
        info.file_urls.CopyFrom(urls)
        self.widgets[wid] = state
        back = back_msg.BackMsg()
        back.rerun_script.page_name = self.page_name
        for s in self.widgets.values():
            back.rerun_script.widget_states.widgets.append(s)
        while not self._queue.empty():
            self._queue.get_nowait()
        await self._send(back)
        return await self._collect(t0)
