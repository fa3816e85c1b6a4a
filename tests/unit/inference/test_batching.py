"""The shared batching worker: one forward pass for requests of the same moment, same logits as alone."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from segdemo import config
from segdemo.data.images import decode_image
from segdemo.inference import batching, pipeline
from segdemo.models import registry, weights

MODEL = "deeplab_slim_camvid"  # shipped weights, a real trained network


@pytest.fixture(scope="module")
def model() -> weights.SegmentationModel:
    return weights.load_model(MODEL, device="cpu")


def _photo(name: str) -> np.ndarray:
    return decode_image((config.SAMPLES_DIR / name).read_bytes(), name).rgb


def test_requests_of_the_same_moment_share_one_forward_and_match_single_runs(model) -> None:
    entry = registry.get(MODEL)
    cat, coffee = _photo("cat.jpg"), _photo("coffee.jpg")  # both 240x360 at a 240-px shorter side
    photos = [cat, coffee, np.ascontiguousarray(cat[:, ::-1]), np.ascontiguousarray(coffee[::-1])]
    inputs = [pipeline.preprocess(p, entry, 240, "cpu")[0] for p in photos]
    release = threading.Event()
    worker = batching.BatchingWorker(max_batch=8, max_queue=16, gather_s=0.0)

    def blocked_forward(x: torch.Tensor) -> torch.Tensor:
        release.wait(30)  # the first request holds the worker until all others queue up
        return model(x)

    first = worker.submit("m", inputs[0], blocked_forward)
    while not worker._running:  # the worker took the first request and is held in its forward
        pass
    others = [worker.submit("m", x, model) for x in inputs[1:]]
    assert [t.ahead() for t in others] == [1, 2, 3], "each waiting request knows its place"
    release.set()
    first.wait()
    results = [t.wait() for t in others]
    assert worker.batches == 2, "the three requests that waited together ran as one batch"
    assert [t.batch_size for t in others] == [3, 3, 3] and first.batch_size == 1
    assert len({x.shape for x in inputs}) == 1
    for ticket_logits, x in zip(results, inputs[1:]):
        assert ticket_logits.shape[0] == 1  # each session gets its own image's slice of the batch
        torch.testing.assert_close(ticket_logits, model(x), atol=1e-4, rtol=1e-4)


def test_different_input_shapes_are_never_stacked(model) -> None:
    entry = registry.get(MODEL)
    a = pipeline.preprocess(_photo("cat.jpg"), entry, 240, "cpu")[0]
    b = pipeline.preprocess(_photo("astronaut.jpg"), entry, 240, "cpu")[0]
    assert a.shape != b.shape
    release = threading.Event()
    worker = batching.BatchingWorker(gather_s=0.0)
    hold = worker.submit("m", a, lambda x: (release.wait(30), model(x))[1])
    while not worker._running:
        pass
    t1, t2 = worker.submit("m", a, model), worker.submit("m", b, model)
    release.set()
    for t in (hold, t1, t2):
        t.wait()
    assert (t1.batch_size, t2.batch_size) == (1, 1), "one batch per input shape"
    torch.testing.assert_close(t2.logits, model(b), atol=1e-4, rtol=1e-4)


def test_a_full_queue_refuses_at_once_and_errors_reach_every_waiting_session(model) -> None:
    release = threading.Event()
    worker = batching.BatchingWorker(max_queue=2, gather_s=0.0)
    x = torch.zeros(1, 3, 64, 64)

    def failing(_: torch.Tensor) -> torch.Tensor:
        release.wait(30)
        raise RuntimeError("boom")

    running = worker.submit("m", x, failing)
    while not worker._running:
        pass
    queued = [worker.submit("m", x, failing), worker.submit("m", x, failing)]
    with pytest.raises(batching.QueueFull):
        worker.submit("m", x, failing)
    release.set()
    for t in [running, *queued]:
        with pytest.raises(RuntimeError, match="boom"):
            t.wait()


def test_predict_through_the_worker_equals_predict_and_reports_the_wait(model) -> None:
    entry = registry.get(MODEL)
    photo = _photo("coffee.jpg")
    direct = pipeline.predict(model, entry, photo, 240)
    forward = batching.WorkerForward(batching.BatchingWorker(), model, MODEL)
    via = pipeline.predict(model, entry, photo, 240, run_forward=forward)
    np.testing.assert_array_equal(via.labels, direct.labels)
    assert via.timings["batch"] == 1.0 and via.timings["queue"] >= 0.0
    assert set(direct.timings) >= {"preprocess", "forward", "postprocess"}
