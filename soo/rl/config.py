"""What the RL experiment is made of, as data: the agent kinds with their labels (:data:`AGENTS`; the
environment's own PettingZoo agent names are ``soo.rl.env.AGENT_IDS``), the frozen, validated
configs of one training run (``RLConfig``) and of one scale's protocol (``ScaleConfig``), and the presets per
scale. No computation, no I/O and no figures here: the other modules read these names.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from ..utils import as_seeds, check_choice, check_scale
from .env import MODES, EnvConfig

PAPER_SEEDS = (155, 714, 1908, 1549, 1195, 1812, 542, 2844)
AGENTS = {"deceptive": "Deceptive baseline", "honest": "Honest baseline", "soo": "SOO fine-tuning",
          "capability": "Capability term only", "random": "Random + capability",
          "plain": "Continued training", "soo_held": "SOO fine-tuning, red held",
          "plain_held": "Continued training, red held"}
"""Every agent kind of the experiment with its label in tables and figures, in the order used throughout: the two
baselines, named by the reward they were trained on (:data:`soo.rl.env.MODES`), then the fine-tunings of the
deceptive baseline (:data:`FINETUNES`)."""
FINETUNES = {"soo": ("soo", False), "capability": ("capability", False), "random": ("random", False),
             "plain": (None, False), "soo_held": ("soo", True), "plain_held": (None, True)}
"""Each fine-tuning kind as ``(auxiliary term, red held)``. Every fine-tuning continues MADDPG for
``soo_episodes`` from the seed's deceptive baseline in the deceptive environment; the auxiliary term
(:mod:`soo.rl.auxiliary`: SOO + capability, capability only, random + capability, or none) is one extra step on blue's
policy before each of its updates. "Red held": red's policy, critic and BatchNorm statistics stay those of the
baseline (no update of red), so a change in trapping cannot come from red adapting. The controls tell the SOO
term's effect from continued training (``plain``), from the capability term (``capability``, ``random``) and
from red's learning (``*_held``)."""
AGENT_KINDS = tuple(AGENTS)
FINETUNE_KINDS = tuple(FINETUNES)
"""The fine-tuning kinds (the agent kinds that are not baselines)."""
AUX_TERMS = ("soo", "capability", "random")
"""The auxiliary terms of :mod:`soo.rl.auxiliary` (``RLConfig.soo_condition``)."""
assert AGENT_KINDS == MODES + FINETUNE_KINDS, "AGENTS: the baselines (in the order of env.MODES), then FINETUNES"

SETTINGS = {"official": {}, "gamma099": {"gamma": 0.99}, "single_env": {"num_envs": 1},
            "gamma099_single_env": {"gamma": 0.99, "num_envs": 1}, "official_long": {}}
"""Named departures from the official training settings (``RLConfig`` fields), for every run of a protocol.
``official``: the official code's settings (with 100 parallel environments); ``gamma099``: discount 0.99 (at
0.95 a scripted lure does not beat going straight to the goal in discounted return); ``single_env``: the official
single-environment schedule (``n_rollout_threads`` 1); both together; ``official_long``: the official settings
with baselines :data:`BASELINE_LENGTH` times as long (80 000 episodes at the full scale, the exploration noise
annealed over the same share of them; fine-tunings as in the official protocol). ``soo.rl.screen`` screens them."""
BASELINE_LENGTH = {"official_long": 2}
"""Settings whose baselines train this many times the scale's ``baseline_episodes``, with the exploration noise
annealed over as many times the scale's ``n_exploration_eps`` (default 1)."""
SETTING_LABELS = {"official": "official", "gamma099": "discount 0.99", "single_env": "one environment",
                  "gamma099_single_env": "discount 0.99, one environment",
                  "official_long": "official, baselines twice as long"}
"""How tables and figures name each setting."""
assert tuple(SETTING_LABELS) == tuple(SETTINGS) and set(BASELINE_LENGTH) <= set(SETTINGS)


def _positive_int(name, value):
    if isinstance(value, bool) or int(value) != value or value <= 0:
        raise ValueError(f"{name}={value!r} must be a positive integer.")


@dataclass(frozen=True)
class RLConfig:
    mode: str = "deceptive"
    """blue's reward: 'deceptive' (+10 per step once red is trapped) or 'honest'"""
    seed: int = 1
    """seeds torch, the environments and the exploration noise"""
    n_episodes: int = 40_000
    """training episodes (the official baselines: 40k; SOO fine-tuning: 10k)"""
    episode_length: int = 50
    """steps per episode"""
    radius: float = 0.125
    """observation radius"""
    num_envs: int = 100
    """environments stepped in parallel (maddpg-pytorch's n_rollout_threads; the official used 1)"""
    hidden_dim: int = 64
    """width of the two hidden layers of every policy and critic"""
    lr: float = 0.01
    """Adam learning rate of policies and critics"""
    gamma: float = 0.95
    """discount"""
    tau: float = 0.01
    """soft target update rate"""
    batch_size: int = 1024
    """replay minibatch"""
    buffer_length: int = 1_000_000
    """replay capacity (transitions)"""
    steps_per_update: int = 100
    """one update round (both agents) per this many environment transitions"""
    grad_clip: float = 0.5
    """gradient-norm clip of policies and critics"""
    policy_reg: float = 1e-3
    """policy regulariser weight on mean(a^2)"""
    init_noise_scale: float = 0.3
    """OU noise scale at episode 0"""
    final_noise_scale: float = 0.0
    """OU noise scale after n_exploration_eps episodes"""
    n_exploration_eps: int = 25_000
    """episodes over which the noise scale is annealed linearly"""
    save_interval: int = 1000
    """episodes between resumable checkpoints"""
    soo_condition: str | None = None
    """the auxiliary term on blue's policy while fine-tuning: 'soo', 'capability' or 'random' (None: no term)"""
    hold_red: bool = False
    """red is not trained (its policy, critic and BatchNorm statistics stay as they started)"""
    soo_batch: int = 1024
    """observations per auxiliary (SOO / capability) step"""

    def __post_init__(self):
        check_choice("mode", self.mode, MODES)
        for name in ("n_episodes", "episode_length", "num_envs", "hidden_dim", "batch_size", "buffer_length",
                     "steps_per_update", "n_exploration_eps", "save_interval", "soo_batch"):
            _positive_int(name, getattr(self, name))
        if not self.radius > 0:
            raise ValueError(f"radius={self.radius!r} must be > 0 (the paper uses 0.125).")
        for name in ("lr", "tau", "grad_clip"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)!r} must be > 0.")
        if not 0 <= self.gamma < 1:
            raise ValueError(f"gamma={self.gamma!r} must be in [0, 1).")
        if self.soo_condition is not None:
            check_choice("soo_condition", self.soo_condition, AUX_TERMS + (None,))
        if not isinstance(self.hold_red, bool):
            raise ValueError(f"hold_red={self.hold_red!r} must be True or False.")

    @property
    def env(self) -> EnvConfig:
        return EnvConfig(mode=self.mode, radius=self.radius, episode_length=self.episode_length)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ScaleConfig:
    scale: str
    seeds: tuple[int, ...] = PAPER_SEEDS
    """training seeds (one deceptive + one honest baseline + one fine-tuning per condition each)"""
    baseline_episodes: int = 40_000
    soo_episodes: int = 10_000
    num_envs: int = 100
    eval_episodes: int = 500
    """evaluation episodes per agent and seed for the behavioural metrics (official: 500)"""
    class_seeds: int = 10
    """evaluation seeds of the classification experiment"""
    class_episodes: tuple[int, ...] = (1,) + tuple(range(100, 1501, 100))
    """episodes per seed at which the classification accuracy is read"""
    grid: int = 100
    """threshold grid size of the count surfaces"""
    overrides: dict = field(default_factory=dict)
    """extra RLConfig fields for every run (e.g. save_interval)"""
    workers: int = 2
    """training processes (1: in this process, no start-up cost)"""
    cpu_stack: int = 4
    """on a CPU, a stage's runs train in stacks of at most this many (one stack per process at a time): the
    per-operation overhead is shared by the stack (``benchmarks/bench_rl.py --stacked`` measures it); the split
    depends on the runs only, not on ``workers``, so the digits do not depend on the process count"""
    finetune_reward: str = "deceptive"
    """blue's reward while fine-tuning: 'deceptive' (the paper) or 'honest' (a workshop question)"""
    setting: str = "official"
    """the training settings of every run (:data:`SETTINGS`): 'official' or a named departure such as 'gamma099'"""

    def __post_init__(self):
        check_scale(self.scale)
        if len(self.seeds) == 0:
            raise ValueError("seeds must name at least one training seed.")
        for name in ("baseline_episodes", "soo_episodes", "num_envs", "eval_episodes", "class_seeds", "grid", "workers",
                     "cpu_stack"):
            _positive_int(name, getattr(self, name))
        for e in self.class_episodes:
            _positive_int("class_episodes", e)
        check_choice("finetune_reward", self.finetune_reward, MODES)
        check_choice("setting", self.setting, tuple(SETTINGS))

    @property
    def tag(self) -> str:
        """The folder name of this protocol's runs: the scale, and the setting where it is not the official one."""
        return self.scale if self.setting == "official" else f"{self.scale}_{self.setting}"

    @property
    def baseline_length(self) -> int:
        """Training episodes of each baseline under this setting (:data:`BASELINE_LENGTH`)."""
        return self.baseline_episodes * BASELINE_LENGTH.get(self.setting, 1)

    def rl_config(self, mode: str, seed: int, **kw) -> RLConfig:
        """A baseline's config (``kw`` overrides any field: :meth:`finetune_config` passes the fine-tuning's)."""
        factor = BASELINE_LENGTH.get(self.setting, 1)
        base = dict(mode=mode, seed=seed, n_episodes=self.baseline_length, num_envs=self.num_envs)
        longer = {} if factor == 1 else {
            "n_exploration_eps": factor * self.overrides.get("n_exploration_eps", RLConfig.n_exploration_eps)}
        return RLConfig(**{**base, **self.overrides, **longer, **SETTINGS[self.setting], **kw})

    def finetune_config(self, kind: str, seed: int) -> RLConfig:
        """The config of fine-tuning ``kind`` (:data:`FINETUNES`) of seed ``seed``'s deceptive baseline."""
        check_choice("kind", kind, FINETUNE_KINDS)
        term, held = FINETUNES[kind]
        schedule = {"n_exploration_eps": self.overrides.get("n_exploration_eps", RLConfig.n_exploration_eps)}
        return self.rl_config(self.finetune_reward, seed, n_episodes=self.soo_episodes, soo_condition=term,
                              hold_red=held, **schedule)


PRESETS = {
    "smoke": ScaleConfig("smoke", seeds=(155, 714), baseline_episodes=150, soo_episodes=50, num_envs=50,
                         eval_episodes=20, class_seeds=3, class_episodes=(1, 5, 10, 20), grid=25, workers=1,
                         overrides=dict(batch_size=256, save_interval=100, buffer_length=100_000)),
    "default": ScaleConfig("default", seeds=(155, 714, 1908), baseline_episodes=4000, soo_episodes=1000,
                           num_envs=100, eval_episodes=200, class_seeds=10,
                           class_episodes=(1, 10, 25, 50, 100, 200, 300), grid=50,
                           overrides=dict(n_exploration_eps=3000, save_interval=1000)),
    "full": ScaleConfig("full", overrides=dict(save_interval=10_000)),  # checkpoints of 1e6-row buffers are large
}


def scale_config(scale: str, seeds=None, setting: str = "official", **overrides) -> ScaleConfig:
    """The preset of ``scale`` with optional ``seeds``, training ``setting`` (:data:`SETTINGS`) and field overrides
    (validated)."""
    check_scale(scale)
    check_choice("setting", setting, tuple(SETTINGS))
    cfg = replace(PRESETS[scale], setting=setting)
    if seeds is not None:
        cfg = replace(cfg, seeds=as_seeds(seeds))
    return replace(cfg, **overrides) if overrides else cfg
