"""Process-level performance settings."""

from nmt import device as perf


def test_keep_matmul_kernels_sizes_onednns_cache_unless_the_user_did(monkeypatch):
    monkeypatch.delenv(perf.ONEDNN_CACHE, raising=False)
    assert perf.keep_matmul_kernels() == perf.MATMUL_KERNELS
    assert perf.os.environ[perf.ONEDNN_CACHE] == str(perf.MATMUL_KERNELS)
    monkeypatch.setenv(perf.ONEDNN_CACHE, "100")
    assert perf.keep_matmul_kernels() == 100  # the user's own setting stands
    assert perf.os.environ[perf.ONEDNN_CACHE] == "100"
