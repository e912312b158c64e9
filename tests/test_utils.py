"""The ground floor's parameter checks, as both wings see them."""
import pytest

from soo.llm.config import llm_config
from soo.rl.config import scale_config
from soo.utils import MAX_SEED, as_seeds


@pytest.mark.parametrize("bad", [[-1], "[-1]", [0, MAX_SEED + 1], [2**40]])
def test_seeds_out_of_range_fail_naming_seeds_in_both_wings(bad):
    for build in (as_seeds, lambda s: llm_config("smoke", seeds=s), lambda s: scale_config("smoke", s)):
        with pytest.raises(ValueError, match=r"seeds=.*out of range.*0 to 4294967295"):
            build(bad)


def test_seeds_at_the_ends_of_the_range_pass():
    assert as_seeds([0, MAX_SEED]) == (0, MAX_SEED)
    assert as_seeds("[155, 714]") == (155, 714)
