import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

from soo.llm import models  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture()
def one_torch_thread():
    """Tiny networks (the RL tests): one thread is faster and avoids oversubscribing a busy 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def embedded():
    """The real embedded model (converted once per machine)."""
    return models.load(models.EMBEDDED)


@pytest.fixture(scope="session", params=models.TINY_MODELS)
def tiny(request):
    return request.param, *models.load(request.param)
