"""A cold start paints the page header before torch loads (issue 10, first render).

Measured in Chromium by ``python -m segdemo bench --ui``; this test keeps the order
that makes it fast: in a fresh interpreter, the home page's title is drawn while
neither torch nor torchvision has been imported, and the page still completes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
import streamlit as st
from streamlit.testing.v1 import AppTest

seen = []
_title = st.title
def title(*args, **kwargs):
    seen.append({"torch": "torch" in sys.modules, "torchvision": "torchvision" in sys.modules})
    return _title(*args, **kwargs)
st.title = title
at = AppTest.from_file(sys.argv[1], default_timeout=120).run()
print(json.dumps({"seen": seen, "exception": [e.value for e in at.exception], "tables": len(at.table),
                  "torch_at_end": "torch" in sys.modules}))
"""


def test_home_title_is_drawn_before_torch_is_imported() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE, str(REPO / "app.py")], cwd=REPO, capture_output=True,
                         text=True, timeout=300, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert not result["exception"], result["exception"]
    assert result["seen"] and result["seen"][0] == {"torch": False, "torchvision": False}, result
    assert result["tables"] >= 1, "the model table comes after the header"
    assert result["torch_at_end"], "the page went on to load torch for its device and models"
