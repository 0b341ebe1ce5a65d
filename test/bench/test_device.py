"""Device resolution: one contract for training, evaluation, benchmarks and the node."""

from __future__ import annotations

import pytest
import torch

from gsnerf_ros.device import (DeviceError, DeviceUnavailableError, cpu_thread_warning,
                               device_or_cpu, resolve_device)


@pytest.fixture
def fake_cuda(monkeypatch):
    """Pretend this machine has 2 CUDA devices, the current one being cuda:1."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    return monkeypatch


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    return monkeypatch


def test_cpu_and_auto_without_cuda(no_cuda):
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")


def test_cuda_always_gets_an_index(fake_cuda):
    # torch.cuda.set_device and DDP reject a bare 'cuda' (issue 11): the index must be there
    assert resolve_device("cuda") == torch.device("cuda", 1)          # the current device
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    assert resolve_device(torch.device("cuda", 1)).index == 1
    fake_cuda.setenv("LOCAL_RANK", "1")                                # torchrun's rank GPU
    assert resolve_device("cuda") == torch.device("cuda", 1)
    assert resolve_device("auto") == torch.device("cuda", 1)


def test_cuda_index_out_of_range_is_unavailable(fake_cuda):
    with pytest.raises(DeviceUnavailableError, match="2 CUDA device"):
        resolve_device("cuda:2")


def test_cuda_without_cuda_raises_unless_fallback_is_asked(no_cuda):
    with pytest.raises(DeviceUnavailableError, match="CUDA is not available"):
        resolve_device("cuda")
    dev, warning = device_or_cpu("cuda:0")
    assert dev == torch.device("cpu") and "falling back to the CPU" in warning
    assert device_or_cpu("cpu") == (torch.device("cpu"), None)


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "cuda:-1", "cpu:0", "tpu", "", "cuda0"])
def test_malformed_names_raise_even_with_fallback(no_cuda, bad):
    with pytest.raises(DeviceError, match="auto, cpu, cuda, cuda:N or mps"):
        resolve_device(bad)
    with pytest.raises(DeviceError):
        device_or_cpu(bad)


def test_progress_line_when_the_bar_is_off():
    from gsnerf_ros.train.trainer import progress_line

    line = progress_line(20, 100, {"loss": 0.5, "rgb": 0.25, "lr": 1e-3}, 4.0, 20)
    assert line.startswith("step 20/100") and "loss=0.5" in line and "0.200 s/step" in line


def test_cpu_thread_warning_only_when_the_threads_would_share_busy_cores():
    assert cpu_thread_warning(2, load=0.1, cores=2) is None          # an idle 2-core machine
    assert cpu_thread_warning(1, load=5.0, cores=2) is None          # one thread never waits
    assert cpu_thread_warning(4, load=3.0, cores=8) is None
    msg = cpu_thread_warning(2, load=1.0, cores=2)                   # another job on one core
    assert msg is not None and "threads=2 on 2 core(s)" in msg and "threads=1" in msg
    assert cpu_thread_warning(8, load=0.0, cores=4) is not None      # more threads than cores
