"""LEGION networks, shapes for D_s=12, |A|=4, d_z=10, e ∈ R^384 (docs/method.md#vae,
docs/method.md#actor-and-critic).

* `VAEEncoder`      q(z|s,e): [s;e] → 3×(Linear+ReLU, 400) → heads μ, log σ² (trunk computed once).
* `ContextDecoder`  z → 400 → 400 → 400 → embed_dim, tanh output.
* `DynamicsDecoder` [s,a,z] → 400 → 400 → 400 → D_s, linear output, predicts s'.
* `Actor`           [s,z] → Linear–LayerNorm–Tanh → 3×(Linear–LeakyReLU) → Linear(2|A|), tanh-squashed Gaussian
                    with log σ = -20 + 11·(tanh(raw)+1).
* `TwinCritic`      Q1, Q2 over [s,z,a] with the actor's trunk and a scalar head, FUSED: one module with
                    stacked parameters that evaluates both nets in one call, either as one batched kernel per layer
                    (`torch.baddbmm`, GPU) or grouped 2-D kernels on the stacked weights (CPU, measured faster).
                    Numerically the same function as two independent `nn.Sequential` Q nets (tested).

All Linear weights: Xavier-uniform, biases zero (as the original). LayerNorm: default init (weight 1, bias 0).
The hidden-layer Tanh of the actor and critics and the context decoder's output tanh use `fast_tanh` (the same
function, computed as 2·σ(2x) - 1 on CPU, where torch's tanh kernel is slow).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LOG_STD_MIN = -20.0  # the original's log σ bounds [-20, 2]
LOG_STD_MAX = 2.0
LEAKY_SLOPE = 0.01  # the original's LeakyReLU slope
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


class _SigmoidTanh(torch.autograd.Function):
    """tanh(x) = 2·σ(2x) - 1, with torch's fused tanh backward (1 - y²)·g."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = (x * 2.0).sigmoid_().mul_(2.0).sub_(1.0)  # in place on one fresh buffer (no graph in here)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(grad, y)


def fast_tanh(x: torch.Tensor) -> torch.Tensor:
    """tanh for the hidden layers, computed as 2·σ(2x) - 1 on CPU.

    torch's CPU tanh kernel is ~10× slower than its sigmoid on the dev machines (640 µs vs 65 µs for the
    [2, 512, 300] critic activation, 1 thread); this form is ~2× faster forward and backward, and within
    2e-7 absolute of tanh (fp32 rounding level: torch.tanh itself is within 3e-8 of the float64 value).
    On other devices it is plain torch.tanh.
    """
    if x.device.type != "cpu":
        return torch.tanh(x)
    return _SigmoidTanh.apply(x)


class FastTanh(nn.Module):
    """`nn.Tanh` computed by `fast_tanh` (no parameters: state-dict layout unchanged)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_tanh(x)


def init_linear_(layer: nn.Linear) -> nn.Linear:
    """Xavier-uniform weight, zero bias (the original's `agent_utils.weight_init`)."""
    nn.init.xavier_uniform_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


def mlp(in_dim: int, hidden: int, out_dim: int, n_hidden_layers: int = 3) -> nn.Sequential:
    """in → hidden (ReLU) ×n_hidden_layers → out (linear). The VAE trunk and decoders."""
    layers: list[nn.Module] = []
    d = in_dim
    for _ in range(n_hidden_layers):
        layers += [init_linear_(nn.Linear(d, hidden)), nn.ReLU()]
        d = hidden
    layers.append(init_linear_(nn.Linear(d, out_dim)))
    return nn.Sequential(*layers)


# ------------------------------------------------------------------------------------------------------------
# VAE (docs/method.md#vae)
# ------------------------------------------------------------------------------------------------------------
class VAEEncoder(nn.Module):
    """q(z|s,e) = N(μ, diag exp(log σ²)) over x = [s; e] (`encoder_input_setup=context_obs`).

    The original evaluates the trunk once per head; here it runs once and feeds both heads.
    """

    def __init__(self, obs_dim: int, embed_dim: int, latent_dim: int, hidden: int = 400):
        super().__init__()
        self.obs_dim, self.embed_dim, self.latent_dim = obs_dim, embed_dim, latent_dim
        # "num_layers=2" in the original builds input + 1 hidden + output layer, each followed by ReLU: 3 Linears.
        self.trunk = nn.Sequential(
            init_linear_(nn.Linear(obs_dim + embed_dim, hidden)),
            nn.ReLU(),
            init_linear_(nn.Linear(hidden, hidden)),
            nn.ReLU(),
            init_linear_(nn.Linear(hidden, hidden)),
            nn.ReLU(),
        )
        self.mu = init_linear_(nn.Linear(hidden, latent_dim))
        self.logvar = init_linear_(nn.Linear(hidden, latent_dim))

    def forward(self, obs: torch.Tensor, embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return μ [B,d_z] and log σ² [B,d_z] (unclamped, as the original; the agent applies its clamp option)."""
        h = self.trunk(torch.cat([obs, embedding], dim=-1))
        return self.mu(h), self.logvar(h)

    def forward_shared_embedding(
        self, obs: torch.Tensor, embedding: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """μ, log σ² for n observations per embedding: obs [n, B, D_s], embedding [B, D_e] → [n, B, d_z] each.

        Same function as `forward(obs[i], embedding)` for every i, but the embedding's share of the first layer,
        W_e·e + b (384 of its 396 input columns), is computed once for all n (used for s and s' of a batch).
        """
        first = self.trunk[0]
        h = F.linear(obs, first.weight[:, : self.obs_dim]) + F.linear(
            embedding, first.weight[:, self.obs_dim :], first.bias
        )
        for layer in self._trunk_tail:
            h = layer(h)
        return self.mu(h), self.logvar(h)

    @property
    def _trunk_tail(self) -> list[nn.Module]:
        return list(self.trunk)[1:]


class ContextDecoder(nn.Module):
    """Dec_e(z): z → 400 → 400 → 400 → embed_dim, ReLU hidden, tanh output; target e."""

    def __init__(self, latent_dim: int, embed_dim: int, hidden: int = 400):
        super().__init__()
        self.net = mlp(latent_dim, hidden, embed_dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return fast_tanh(self.net(z))


class DynamicsDecoder(nn.Module):
    """Dec_s([s,a,z]) → ŝ' (absolute next observation, linear output)."""

    def __init__(self, obs_dim: int, action_dim: int, latent_dim: int, hidden: int = 400):
        super().__init__()
        self.net = mlp(obs_dim + action_dim + latent_dim, hidden, obs_dim)

    def forward(self, obs: torch.Tensor, action: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, action, z], dim=-1))


# ------------------------------------------------------------------------------------------------------------
# Actor (docs/method.md#actor-and-critic)
# ------------------------------------------------------------------------------------------------------------
class Actor(nn.Module):
    """Tanh-squashed Gaussian policy π(a|s,z) (the original's `DPMM_Actor`).

    `self.model` has the original's layer indices (model.0 Linear(22,300), model.1 LayerNorm, model.3/5/7
    Linear(300,300), model.9 Linear(300,8)), so the released actor checkpoint loads into it unchanged.
    """

    def __init__(self, obs_dim: int, latent_dim: int, action_dim: int, hidden: int = 300):
        super().__init__()
        self.action_dim = action_dim
        self.model = nn.Sequential(
            init_linear_(nn.Linear(obs_dim + latent_dim, hidden)),
            nn.LayerNorm(hidden),
            FastTanh(),
            init_linear_(nn.Linear(hidden, hidden)),
            nn.LeakyReLU(LEAKY_SLOPE),
            init_linear_(nn.Linear(hidden, hidden)),
            nn.LeakyReLU(LEAKY_SLOPE),
            init_linear_(nn.Linear(hidden, hidden)),
            nn.LeakyReLU(LEAKY_SLOPE),
            init_linear_(nn.Linear(hidden, 2 * action_dim)),
        )

    def forward(self, obs: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the pre-tanh mean μ [B,|A|] and log σ [B,|A|] ∈ [-20, 2]."""
        mean, raw = self.model(torch.cat([obs, z], dim=-1)).chunk(2, dim=-1)
        # log σ = min + ½(max - min)(tanh(raw) + 1) = -20 + 11·(tanh(raw) + 1)
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(raw) + 1.0)
        return mean, log_std

    @staticmethod
    def squashed_log_prob(noise: torch.Tensor, log_std: torch.Tensor, pre_tanh: torch.Tensor) -> torch.Tensor:
        """log π(a) of a = tanh(u), u = μ + σ·ξ, exactly as the original, shape [B,1]:

        log π = Σ(-½ξ² - log σ) - ½·|A|·log 2π - Σ log(relu(1 - tanh(u)²) + 1e-6).
        """
        gaussian = (-0.5 * noise.pow(2) - log_std).sum(-1, keepdim=True) - _HALF_LOG_2PI * noise.shape[-1]
        squash = torch.log(F.relu(1.0 - torch.tanh(pre_tanh).pow(2)) + 1e-6).sum(-1, keepdim=True)
        return gaussian - squash

    def sample(self, obs: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reparameterised sample. Returns (a = tanh(u) [B,|A|], log π(a) [B,1], deterministic tanh(μ) [B,|A|])."""
        mean, log_std = self(obs, z)
        noise = torch.randn_like(mean)
        u = mean + log_std.exp() * noise
        return torch.tanh(u), self.squashed_log_prob(noise, log_std, u), torch.tanh(mean)

    def deterministic(self, obs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The evaluation/deployment action tanh(μ) (docs/method.md#deployment)."""
        return torch.tanh(self(obs, z)[0])


# ------------------------------------------------------------------------------------------------------------
# Twin critic (docs/method.md#actor-and-critic), fused
# ------------------------------------------------------------------------------------------------------------
class TwinCritic(nn.Module):
    """Q1 and Q2 over x = [s, z, a], each Linear–LayerNorm–Tanh → 3×(Linear–LeakyReLU) → Linear(1).

    Fused: one module holds both nets; layer l of both is ONE parameter of shape [2, in, out] (bias [2, 1, out];
    weights stored as [in, out], the transpose of nn.Linear, so no kernel needs a transpose). One call of
    `forward_stacked` evaluates both twins, on one of two execution paths (`mode`):

    * "batched": one batched kernel per layer for both nets (`torch.baddbmm`; the first layer, whose input is
      shared, is a single [B,in]×[in,2·hidden] matmul). Fewest kernel launches: the right choice on a GPU.
    * "grouped": the two nets one after the other on 2-D slices of the same stacked parameters, with the bias
      fused into the matmul (`torch.addmm`) and the per-net LayerNorm affine fused into `layer_norm`. On CPU it
      is faster: measured 11.4 vs 14.2 ms per fwd+bwd at batch 512 (1 thread, oneDNN matmuls), because
      `baddbmm` first copies the broadcast bias into its output and batched backward matmuls run slower.
    * "auto" (default): grouped on CPU, batched elsewhere.

    Both paths are the same function as two independent nets (tests/unit/test_agent_networks.py):
    `to_sequential(i)` / `from_sequential(q1, q2)` convert to and from the original's plain `nn.Sequential` twins.
    """

    n_nets = 2

    def __init__(
        self,
        obs_dim: int,
        latent_dim: int,
        action_dim: int,
        hidden: int = 300,
        n_hidden: int = 3,
        mode: str = "auto",
    ):
        super().__init__()
        if mode not in ("auto", "batched", "grouped"):
            raise ValueError(f"mode must be auto|batched|grouped, got {mode!r}")
        self.mode = mode
        self.in_dim = obs_dim + latent_dim + action_dim
        self.hidden = hidden
        self.n_hidden = n_hidden
        n = self.n_nets
        self.w_in = nn.Parameter(torch.empty(n, self.in_dim, hidden))
        self.b_in = nn.Parameter(torch.zeros(n, 1, hidden))
        self.ln_weight = nn.Parameter(torch.ones(n, 1, hidden))
        self.ln_bias = nn.Parameter(torch.zeros(n, 1, hidden))
        self.w_hidden = nn.ParameterList(
            [nn.Parameter(torch.empty(n, hidden, hidden)) for _ in range(n_hidden)]
        )
        self.b_hidden = nn.ParameterList([nn.Parameter(torch.zeros(n, 1, hidden)) for _ in range(n_hidden)])
        self.w_out = nn.Parameter(torch.empty(n, hidden, 1))
        self.b_out = nn.Parameter(torch.zeros(n, 1, 1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform per net and layer (fan_in/fan_out of the [out, in] Linear it stands for), zero bias."""
        with torch.no_grad():
            for w in [self.w_in, *self.w_hidden, self.w_out]:
                for i in range(self.n_nets):
                    # xavier_uniform_ on the [in, out] view has the same (symmetric) bound as on [out, in].
                    nn.init.xavier_uniform_(w[i])
            for b in [self.b_in, *self.b_hidden, self.b_out]:
                b.zero_()
            self.ln_weight.fill_(1.0)
            self.ln_bias.zero_()

    def forward_stacked(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, in] → Q values of both nets, [2, B, 1] (path chosen by `self.mode`, see the class docstring)."""
        mode = self.mode
        if mode == "auto":
            mode = "grouped" if x.device.type == "cpu" else "batched"
        return self._forward_grouped(x) if mode == "grouped" else self._forward_batched(x)

    def _forward_batched(self, x: torch.Tensor) -> torch.Tensor:
        """One batched kernel per layer for both nets."""
        n, h = self.n_nets, self.hidden
        # Shared input: one [B,in]×[in,2h] matmul, then split per net → [2, B, h].
        w_in = self.w_in.permute(1, 0, 2).reshape(self.in_dim, n * h)
        y = (x @ w_in).view(-1, n, h).transpose(0, 1) + self.b_in
        # LayerNorm without affine, then the per-net affine (nn.LayerNorm(h) of each net) in one addcmul.
        y = fast_tanh(torch.addcmul(self.ln_bias, F.layer_norm(y, (h,)), self.ln_weight))
        for w, b in zip(self.w_hidden, self.b_hidden):
            y = F.leaky_relu(torch.baddbmm(b, y, w), LEAKY_SLOPE)
        return torch.baddbmm(self.b_out, y, self.w_out)

    def _forward_grouped(self, x: torch.Tensor) -> torch.Tensor:
        """The twins one after the other on the stacked parameters, 2-D kernels with fused bias (addmm)."""
        h = self.hidden
        # unbind: one backward node per stacked parameter (two `w[i]` selects would each scatter a full-size
        # zero gradient).
        ws = [w.unbind(0) for w in (self.w_in, *self.w_hidden, self.w_out)]
        bs = [b.unbind(0) for b in (self.b_in, *self.b_hidden, self.b_out)]
        ln_w, ln_b = self.ln_weight.unbind(0), self.ln_bias.unbind(0)
        out = []
        for i in range(self.n_nets):
            y = torch.addmm(bs[0][i], x, ws[0][i])
            y = fast_tanh(F.layer_norm(y, (h,), ln_w[i][0], ln_b[i][0]))
            for w, b in zip(ws[1:-1], bs[1:-1]):
                y = F.leaky_relu(torch.addmm(b[i], y, w[i]), LEAKY_SLOPE)
            out.append(torch.addmm(bs[-1][i], y, ws[-1][i]))
        return torch.stack(out)

    def forward(
        self, obs: torch.Tensor, z: torch.Tensor, action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (Q1, Q2), each [B, 1]."""
        q = self.forward_stacked(torch.cat([obs, z, action], dim=-1))
        return q[0], q[1]

    def min_q(self, obs: torch.Tensor, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """min(Q1, Q2) [B, 1] (target and actor loss, docs/method.md#losses)."""
        return self.forward_stacked(torch.cat([obs, z, action], dim=-1)).amin(dim=0)

    # ---- conversion to / from two independent nets (tests, export, loading original checkpoints) ----------
    def to_sequential(self, i: int) -> nn.Sequential:
        """Net i as the original's independent `nn.Sequential` (same layer indices as `Actor.model`)."""
        h = self.hidden
        layers: list[nn.Module] = [nn.Linear(self.in_dim, h), nn.LayerNorm(h), nn.Tanh()]
        for _ in range(self.n_hidden):
            layers += [nn.Linear(h, h), nn.LeakyReLU(LEAKY_SLOPE)]
        layers.append(nn.Linear(h, 1))
        seq = nn.Sequential(*layers).to(self.w_in.device, self.w_in.dtype)
        linears = [m for m in seq if isinstance(m, nn.Linear)]
        ws = [self.w_in, *self.w_hidden, self.w_out]
        bs = [self.b_in, *self.b_hidden, self.b_out]
        with torch.no_grad():
            for lin, w, b in zip(linears, ws, bs):
                lin.weight.copy_(w[i].T)
                lin.bias.copy_(b[i, 0])
            seq[1].weight.copy_(self.ln_weight[i, 0])
            seq[1].bias.copy_(self.ln_bias[i, 0])
        return seq

    @torch.no_grad()
    def from_sequential(self, *nets: nn.Sequential) -> TwinCritic:
        """Load the weights of two `nn.Sequential` Q nets laid out as `to_sequential` (in place, returns self)."""
        assert len(nets) == self.n_nets
        ws = [self.w_in, *self.w_hidden, self.w_out]
        bs = [self.b_in, *self.b_hidden, self.b_out]
        for i, seq in enumerate(nets):
            linears = [m for m in seq if isinstance(m, nn.Linear)]
            assert len(linears) == len(ws), "layer count mismatch"
            for lin, w, b in zip(linears, ws, bs):
                w[i].copy_(lin.weight.T)
                b[i, 0].copy_(lin.bias)
            ln = next(m for m in seq if isinstance(m, nn.LayerNorm))
            self.ln_weight[i, 0].copy_(ln.weight)
            self.ln_bias[i, 0].copy_(ln.bias)
        return self
