"""A per-point MLP run in cache-sized column chunks (the ARM, and the synthesis' 1x1 layers).

These MLPs are a dozen or a few dozen channels wide and run on every latent or pixel (half a
million columns for a Kodak image), so each layer is a pass over tens of MB and the time goes to
memory traffic, not arithmetic. Here the forward runs all layers on one chunk of columns while it
sits in cache, keeping each layer's output (with the residual and the ReLU applied in place: no
pre-activation copies) for a hand-written backward over the same chunks.

A leading batch dimension runs B fits' MLPs (each its own weights) in the same kernels: a batched
matrix product gives each fit what the 2-D product gives it alone, bit for bit.
"""

from collections.abc import Sequence

import torch
from torch import Tensor

# Columns per chunk on a CPU: 12–40 channels × 16k columns × 4 bytes stays within a core's L2
# cache. A GPU takes all columns at once: there, kernel launches cost more than memory traffic.
CHUNK_COLUMNS = 1 << 14
# Activations kept for the backward, at most; a wider MLP recomputes each chunk in its backward
# instead (v2's ARM and synthesis head: a forward pass more, 100–170 MB less at Kodak size).
KEEP_BYTES = 64 << 20


def fused_mlp(
    x: Tensor,
    weights: Sequence[Tensor],
    biases: Sequence[Tensor],
    residual: Sequence[bool],
    relu: Sequence[bool],
) -> Tensor:
    """(B, C_in, N) -> (B, C_out, N) for B fits (one: B = 1), weights (B, C_out, C_in) and
    biases (B, C_out) each: y = W·x + b (+ x where residual), then ReLU where asked."""
    params = [t for pair in zip(weights, biases, strict=True) for t in pair]
    # Decided here: inside the Function's forward, autograd has already switched gradients off.
    backward = torch.is_grad_enabled() and any(t.requires_grad for t in (x, *params))
    kept_bytes = sum(w.shape[1] for w in weights) * x.shape[0] * x.shape[2] * x.element_size()
    keep = backward and kept_bytes <= KEEP_BYTES
    return _FusedMlp.apply(x, (tuple(residual), tuple(relu), keep), *params)


def _forward_chunk(x: Tensor, params: Sequence[Tensor], residual, relu) -> list[Tensor]:
    """Every layer's input, then the output, for one chunk of columns."""
    activations = [x]
    for i in range(len(residual)):
        y = torch.baddbmm(params[2 * i + 1][:, :, None], params[2 * i], activations[-1])
        if residual[i]:
            y += activations[-1]
        activations.append(y.relu_() if relu[i] else y)
    return activations


class _FusedMlp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, layout, *params: Tensor) -> Tensor:
        residual, relu, keep = layout
        out = x.new_empty(x.shape[0], params[-2].shape[1], x.shape[2])
        ctx.chunks = []
        chunk = CHUNK_COLUMNS if x.device.type == "cpu" else max(x.shape[2], 1)
        for start in range(0, x.shape[2], chunk):
            part = slice(start, start + chunk)
            activations = _forward_chunk(x[:, :, part], params, residual, relu)
            out[:, :, part] = activations[-1]
            ctx.chunks.append((part, activations if keep else None))
        ctx.save_for_backward(x, *params)
        ctx.layout = layout
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x, *params = ctx.saved_tensors
        residual, relu, _ = ctx.layout
        grads = [torch.zeros_like(p) for p in params]
        grad_x = torch.empty_like(x)
        for part, kept in ctx.chunks:
            activations = kept or _forward_chunk(x[:, :, part], params, residual, relu)
            g = grad_out[:, :, part]
            for i in reversed(range(len(residual))):
                if relu[i]:  # ReLU's own backward kernel: one pass, no mask tensor
                    g = torch.ops.aten.threshold_backward(g, activations[i + 1], 0)
                grads[2 * i].baddbmm_(g, activations[i].transpose(1, 2))
                grads[2 * i + 1] += g.sum(dim=2)
                g_in = torch.bmm(params[2 * i].transpose(1, 2), g)
                if residual[i]:
                    g_in += g
                g = g_in
            grad_x[:, :, part] = g
        ctx.chunks = []
        return (grad_x if ctx.needs_input_grad[0] else None, None, *grads)
