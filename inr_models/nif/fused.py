"""NIF's forward and backward over chunks of pixels, recomputing activations in the backward.

Through autograd, each of NIF's sine layers makes several full passes over a (pixels × width)
tensor (the product with the period, the sine, and in the backward a cosine and three products),
about 47 MB each for a 120-wide layer on a Kodak sub-image, and keeps three such tensors for the
backward. Here one chunk of pixels goes through the modulator and the main network while it sits
in cache, each sine layer keeps only its input and its angle p·(W·h + b), and the backward walks
the chunks with the derivatives of sin(p·(W·h + b)) written out below.
"""

import torch
from torch import Tensor

OMEGA = 30.0  # base period of the sine activations
MODULATION_SCALE = 10.0  # p(x) = OMEGA + MODULATION_SCALE · m(x)
# Pixels per chunk on a CPU: 4k × 120 channels × 4 bytes, a few MB per activation. A GPU takes
# all pixels at once: there, kernel launches cost more than memory traffic.
CHUNK_ROWS = 1 << 12


def nif_forward(
    main_features: Tensor,
    modulator_features: Tensor,
    main: list[tuple[Tensor, Tensor]],
    modulator: list[tuple[Tensor, Tensor]],
) -> Tensor:
    """(n, F) encodings -> (n, 3); ``main`` and ``modulator`` are (weight, bias) per layer."""
    params = [t for layer in (*modulator, *main) for t in layer]
    # Decided here: inside the Function's forward, autograd has already switched gradients off.
    keep = torch.is_grad_enabled() and any(p.requires_grad for p in params)
    return _FusedNif.apply(main_features, modulator_features, (len(modulator), keep), *params)


def _sine_stack(h: Tensor, layers, frequency) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """sin(frequency·(W·h + b)) layers, then a linear one: its output, and each layer's input and
    angle (the last layer's input included) for the backward."""
    inputs, angles = [], []
    for weight, bias in layers[:-1]:
        angle = torch.addmm(bias, h, weight.t()).mul_(frequency)
        inputs.append(h)
        angles.append(angle)
        h = torch.sin(angle)
    inputs.append(h)
    weight, bias = layers[-1]
    return torch.addmm(bias, h, weight.t()), inputs, angles


def _sine_stack_backward(g: Tensor, layers, grads, inputs, angles, frequency) -> Tensor | None:
    """Accumulates the layers' gradients from ``g``, that of the stack's output; returns the
    gradient of a per-row ``frequency`` tensor (None for a constant one)."""
    _linear_backward(g, inputs[-1], grads[-1])
    g = g @ layers[-1][0]
    per_row = isinstance(frequency, Tensor)
    grad_frequency = torch.zeros_like(frequency) if per_row else None
    for i in reversed(range(len(layers) - 1)):
        # h' = sin(a), a = p·z: dz = g·cos(a)·p, dp = Σ g·cos(a)·z = Σ g·cos(a)·a / p
        g_angle = torch.cos(angles[i]).mul_(g)
        if per_row:
            grad_frequency += (g_angle * angles[i]).sum(dim=1, keepdim=True)
        g = g_angle.mul_(frequency)
        _linear_backward(g, inputs[i], grads[i])
        if i:
            g = g @ layers[i][0]
    return grad_frequency.div_(frequency) if per_row else None


def _pairs(params, n_modulator: int):
    layers = [(params[i], params[i + 1]) for i in range(0, len(params), 2)]
    return layers[:n_modulator], layers[n_modulator:]


class _FusedNif(torch.autograd.Function):
    @staticmethod
    def forward(ctx, main_in: Tensor, mod_in: Tensor, layout: tuple[int, bool], *params: Tensor):
        n_modulator, keep = layout
        modulator, main = _pairs(params, n_modulator)
        out = main_in.new_empty(main_in.shape[0], main[-1][0].shape[0])
        ctx.chunks = []
        chunk = CHUNK_ROWS if main_in.device.type == "cpu" else max(main_in.shape[0], 1)
        for start in range(0, main_in.shape[0], chunk):
            part = slice(start, start + chunk)
            m, mod_inputs, mod_angles = _sine_stack(mod_in[part], modulator, OMEGA)
            period = m.mul_(MODULATION_SCALE).add_(OMEGA)
            out[part], main_inputs, main_angles = _sine_stack(main_in[part], main, period)
            if keep:
                ctx.chunks.append((part, period, mod_inputs, mod_angles, main_inputs, main_angles))
        ctx.save_for_backward(*params)
        ctx.n_modulator = n_modulator
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        params = ctx.saved_tensors
        modulator, main = _pairs(params, ctx.n_modulator)
        grads = [torch.zeros_like(p) for p in params]
        mod_grads, main_grads = _pairs(grads, ctx.n_modulator)
        for part, period, mod_inputs, mod_angles, main_inputs, main_angles in ctx.chunks:
            grad_period = _sine_stack_backward(
                grad_out[part], main, main_grads, main_inputs, main_angles, period
            )
            _sine_stack_backward(
                grad_period.mul_(MODULATION_SCALE), modulator, mod_grads, mod_inputs, mod_angles,
                OMEGA,
            )  # fmt: skip
        ctx.chunks = []
        return (None, None, None, *grads)


def _linear_backward(g: Tensor, inputs: Tensor, into: tuple[Tensor, Tensor]) -> None:
    weight_grad, bias_grad = into
    weight_grad.addmm_(g.t(), inputs)
    bias_grad += g.sum(dim=0)
