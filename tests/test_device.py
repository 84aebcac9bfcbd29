"""nmt.device: the device resolver and the process settings of training and generation runs."""

from __future__ import annotations

import pytest
import torch

from nmt import device as D
from nmt.errors import UserError


@pytest.fixture
def no_cuda(monkeypatch):
    """A machine without a visible GPU (whatever this one has)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def with_cuda(monkeypatch):
    """A machine with GPUs (torch.device("cuda", n) needs none to exist)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)


# ----------------------------------------------------------------------------- resolve_device
def test_auto_is_cpu_without_cuda(no_cuda):
    assert D.resolve_device("auto") == torch.device("cpu")
    assert D.resolve_device("auto", local_rank=3) == torch.device("cpu")


def test_auto_is_this_ranks_gpu_with_cuda(with_cuda):
    assert D.resolve_device("auto") == torch.device("cuda", 0)
    assert D.resolve_device("auto", local_rank=3) == torch.device("cuda", 3)


def test_cuda_is_the_gpu_of_the_local_rank(with_cuda):
    assert D.resolve_device("cuda") == torch.device("cuda", 0)
    assert D.resolve_device("cuda", local_rank=1) == torch.device("cuda", 1)


def test_cpu_is_cpu_whatever_the_rank(with_cuda):
    assert D.resolve_device("cpu") == torch.device("cpu")
    assert D.resolve_device("cpu", local_rank=5) == torch.device("cpu")


def test_cuda_without_cuda_is_a_user_error(no_cuda):
    with pytest.raises(UserError) as e:
        D.resolve_device("cuda")
    assert str(e.value) == "--device cuda: no CUDA device is available"


@pytest.mark.parametrize("name", ["gpu", "CUDA", "cuda:1", "mps", ""])
def test_unknown_device_names_the_valid_ones(name, with_cuda):
    with pytest.raises(UserError) as e:
        D.resolve_device(name)
    assert str(e.value) == f"--device {name!r}: use auto, cpu or cuda"


# ----------------------------------------------------------------------------- process_settings
@pytest.fixture
def caller_threads():
    """The caller runs with 1 intra-op thread; its own setting is put back after the test."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield 1
    torch.set_num_threads(before)


def test_threads_apply_inside_and_the_callers_count_comes_back(caller_threads):
    with D.process_settings(threads=3):
        assert torch.get_num_threads() == 3
    assert torch.get_num_threads() == caller_threads


def test_threads_come_back_when_the_body_raises(caller_threads):
    with pytest.raises(RuntimeError, match="boom"):
        with D.process_settings(threads=3):
            assert torch.get_num_threads() == 3
            raise RuntimeError("boom")
    assert torch.get_num_threads() == caller_threads


@pytest.mark.parametrize("threads", [None, 0])
def test_no_threads_leaves_the_callers_count(threads, caller_threads):
    with D.process_settings(threads=threads):
        assert torch.get_num_threads() == caller_threads
    assert torch.get_num_threads() == caller_threads


def test_a_thread_count_changed_inside_is_undone_too(caller_threads):
    with D.process_settings(threads=2):
        torch.set_num_threads(4)  # e.g. a library call in the run
    assert torch.get_num_threads() == caller_threads
