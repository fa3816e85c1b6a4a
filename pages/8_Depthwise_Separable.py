"""Depthwise-separable convolution: the lecture's parameter count vs real modules, MACs and time."""

import platform

import streamlit as st

from segdemo.ui import errors, sidebar
from segdemo.inference import devices
from segdemo.labs import separable as sep
from segdemo.ui import labs as lab
from segdemo.ui.state import SEP, tr

settings = sidebar.setup_page("page.separable", show_model=False, show_overlay=False)
st.markdown(tr("labs.sep.intro"))
parts = {k: tr(f"labs.sep.tex.{k}") for k in ("standard", "depthwise", "pointwise")}
lab.latex(r"\underbrace{H\cdot W\cdot C\cdot n}_{\text{%(standard)s}}\qquad\text{vs}\qquad"
          r"\underbrace{H\cdot W\cdot C}_{\text{%(depthwise)s}} + \underbrace{C\cdot n}_{\text{%(pointwise)s}}"
          r"\qquad\frac{H W C + C n}{H W C n} = \frac{1}{n} + \frac{1}{H W}" % parts)
st.caption(tr("labs.sep.symbols"))

c1, c2, c3, c4 = st.columns(4)
kh = c1.selectbox(tr("labs.sep.kernel_h"), [1, 3, 5, 7], index=1, key=SEP.KH)
kw = c2.selectbox(tr("labs.sep.kernel_w"), [1, 3, 5, 7], index=1, key=SEP.KW)
c = int(c3.number_input(tr("labs.sep.channels"), 1, 2048, 256, key=SEP.C))
n = int(c4.number_input(tr("labs.sep.filters"), 1, 2048, 256, key=SEP.N))
c5, c6, c7 = st.columns(3)
size = c5.select_slider(tr("labs.sep.map"), [8, 16, 32, 64, 128], value=32, key=SEP.MAP)
bias = c6.checkbox(tr("labs.sep.bias"), value=False, key=SEP.BIAS)
measure = c7.toggle(tr("labs.sep.measure"), value=True, key=SEP.MEASURE, help=tr("labs.sep.measure_help"))

try:
    report = sep.separable_report(int(kh), int(kw), c, n, int(size), int(size), bias=bias,
                                  measure_time=measure, device=settings.device, min_run_time=0.15)
except RuntimeError as exc:  # e.g. out of memory for very large settings
    st.error(tr("labs.sep.error", reason=errors.reason(exc)))
    st.stop()

r = report
ok_std = r.standard_params == r.standard_formula
ok_sep = r.separable_params == r.separable_formula
COLUMNS = ("layer", "module", "formula", "params", "macs")
extra_std, extra_sep = (f" + {n}", f" + {c} + {n}") if bias else ("", "")
table = [
    (tr("labs.sep.standard"), f"Conv2d({c}, {n}, ({kh}, {kw}))",
     f"{kh}·{kw}·{c}·{n}{extra_std} = {r.standard_formula:,}",
     f"{r.standard_params:,} {lab.check_mark(ok_std)}",
     f"{r.standard_macs:,} {lab.check_mark(r.standard_macs == r.standard_macs_formula)}"),
    (tr("labs.sep.depthwise"), f"Conv2d({c}, {c}, ({kh}, {kw}), groups={c})",
     f"{kh}·{kw}·{c}" + (f" + {c}" if bias else ""), f"{r.depthwise_params:,}", f"{r.depthwise_macs:,}"),
    (tr("labs.sep.pointwise"), f"Conv2d({c}, {n}, 1)",
     f"{c}·{n}" + (f" + {n}" if bias else ""), f"{r.pointwise_params:,}", f"{r.pointwise_macs:,}"),
    (tr("labs.sep.separable"), "depthwise → pointwise",
     f"{kh}·{kw}·{c} + {c}·{n}{extra_sep} = {r.separable_formula:,}",
     f"{r.separable_params:,} {lab.check_mark(ok_sep)}",
     f"{r.separable_macs:,} {lab.check_mark(r.separable_macs == r.separable_macs_formula)}"),
]
rows = [{tr(f"labs.sep.col.{name}"): value for name, value in zip(COLUMNS, values)} for values in table]
if measure:
    times = [f"{r.standard_ms:.3f} ms", "", "", f"{r.separable_ms:.3f} ms"]
    for row, text in zip(rows, times):
        row[tr("labs.sep.col.time")] = text
# A static table: headers and formulas wrap, so the measured time stays inside the main area.
lab.plain_table(rows)

m1, m2, m3, m4 = st.columns(4)
m1.metric(tr("labs.sep.ratio_params"), f"{r.param_ratio:.3f}", help=tr("labs.sep.ratio_params_help"))
m2.metric(tr("labs.sep.ratio_macs"), f"{r.mac_ratio:.3f}")
m3.metric("1/n + 1/(H·W)", f"{1 / n + 1 / (kh * kw):.3f}")
if measure and r.separable_ms:
    m4.metric(tr("labs.sep.speedup"), f"{r.standard_ms / r.separable_ms:.1f}×")
st.caption(tr("labs.sep.macs_note", h=r.output_shape[-2], w=r.output_shape[-1]))
if measure:
    # torch.utils.benchmark times the CPU with one thread, whatever PyTorch uses elsewhere.
    where = (tr("labs.sep.one_cpu_thread", cpu=platform.machine()) if settings.device == "cpu"
             else devices.device_name(settings.device))
    st.caption(tr("labs.sep.time_note", device=where, promise=1 / r.mac_ratio))
