"""State dicts in the official SaBN code's layouts load into the project's layers and give the formula's output.

Key names and shapes are those of ../shared/reference/official_state_dicts.md (GAN ``bn.*`` + ``embed.weight``;
Adv ``bn_list.{i}`` with a K+1-row ``embed.weight`` whose last row is the shared affine; NAS ``shared_weight`` /
``shared_bias`` / ``embed.weight`` with optional ``bns.{i}`` statistics; NST SaAdaIN ``shared_weight``/``shared_bias``).
"""

from __future__ import annotations

import torch

import sabn

C, K = 4, 3
EPS = 1e-5
g = torch.Generator().manual_seed(0)


def rnd(*shape, offset=0.0):
    return torch.randn(*shape, generator=g) * 0.5 + offset


def stats():
    return {"running_mean": rnd(C), "running_var": rnd(C).abs() + 0.5, "num_batches_tracked": torch.tensor(7)}


def eval_hat(x, mean, var):
    return (x - mean.view(1, -1, 1, 1)) / torch.sqrt(var.view(1, -1, 1, 1) + EPS)


def v(t):
    return t.view(1, -1, 1, 1)


X = torch.randn(5, C, 3, 3, generator=g)


def test_gan_sabn_layout():
    s = stats()
    sd = {"bn.weight": rnd(C, offset=1), "bn.bias": rnd(C), **{f"bn.{k}": t for k, t in s.items()},
          "embed.weight": rnd(K, 2 * C, offset=0.5)}
    layer = sabn.SandwichBatchNorm2d(C, K)
    layer.load_state_dict(sd)  # strict: every key matches
    layer.eval()
    e = sd["embed.weight"][2]
    expected = v(e[:C]) * (v(sd["bn.weight"]) * eval_hat(X, s["running_mean"], s["running_var"])
                           + v(sd["bn.bias"])) + v(e[C:])
    torch.testing.assert_close(layer(X, 2), expected)


def test_gan_ccbn_layout():
    s = stats()
    sd = {**{f"bn.{k}": t for k, t in s.items()}, "embed.weight": rnd(K, 2 * C, offset=0.5)}
    layer = sabn.CategoricalConditionalBatchNorm2d(C, K)
    layer.load_state_dict(sd)
    layer.eval()
    e = sd["embed.weight"][1]
    expected = v(e[:C]) * eval_hat(X, s["running_mean"], s["running_var"]) + v(e[C:])
    torch.testing.assert_close(layer(X, 1), expected)


def test_adv_auxbn_layout():
    sd = {}
    for i in range(2):
        sd.update({f"bn_list.{i}.weight": rnd(C, offset=1), f"bn_list.{i}.bias": rnd(C)})
        sd.update({f"bn_list.{i}.{k}": t for k, t in stats().items()})
    layer = sabn.AuxBatchNorm2d(C, 2)
    layer.load_state_dict(sd)
    layer.eval()
    expected = v(sd["bn_list.1.weight"]) * eval_hat(
        X, sd["bn_list.1.running_mean"], sd["bn_list.1.running_var"]) + v(sd["bn_list.1.bias"])
    torch.testing.assert_close(layer(X, 1), expected)


def test_adv_saauxbn_layout_with_shared_affine_in_the_last_embedding_row():
    sd = {"embed.weight": rnd(3, 2 * C, offset=0.7)}
    for i in range(2):
        sd.update({f"bn_list.{i}.{k}": t for k, t in stats().items()})
    layer = sabn.SandwichAuxBatchNorm2d(C, 2)
    layer.load_state_dict(dict(sd))
    layer.eval()
    emb = sd["embed.weight"]
    shared_w, shared_b = emb[2, :C], emb[2, C:]
    for branch in (0, 1):
        xhat = eval_hat(X, sd[f"bn_list.{branch}.running_mean"], sd[f"bn_list.{branch}.running_var"])
        expected = v(emb[branch, :C]) * (v(shared_w) * xhat + v(shared_b)) + v(emb[branch, C:])
        torch.testing.assert_close(layer(X, branch), expected)
    # and it saves in the project's own layout, which loads back unchanged
    again = sabn.SandwichAuxBatchNorm2d(C, 2)
    again.load_state_dict(layer.state_dict())
    torch.testing.assert_close(again.eval()(X, 1), layer(X, 1))


def test_nas_sabn_layout_without_running_statistics():
    # NAS supernet: track_running_stats=0, so only the shared affine and the embedding are saved.
    sd = {"shared_weight": rnd(C, offset=1), "shared_bias": rnd(C), "embed.weight": rnd(25, 2 * C, offset=0.5)}
    layer = sabn.SandwichAuxBatchNorm2d(C, 25, track_running_stats=False)
    layer.load_state_dict(sd)
    layer.eval()  # without running statistics, batch statistics are used in eval mode too
    e = sd["embed.weight"][17]
    expected = v(e[:C]) * (v(sd["shared_weight"]) * bn_batch(X) + v(sd["shared_bias"])) + v(e[C:])
    torch.testing.assert_close(layer(X, 17), expected)


def test_nas_sabn_layout_with_bns_statistics():
    sd = {"shared_weight": rnd(C, offset=1), "shared_bias": rnd(C), "embed.weight": rnd(5, 2 * C, offset=0.5)}
    for i in range(5):
        sd.update({f"bns.{i}.{k}": t for k, t in stats().items()})
    layer = sabn.SandwichAuxBatchNorm2d(C, 5)
    layer.load_state_dict(sd)
    torch.testing.assert_close(layer.bn_list[3].running_mean, sd["bns.3.running_mean"])


def test_nas_ccbn_layout():
    sd = {"embed.weight": rnd(5, 2 * C, offset=0.5)}
    layer = sabn.CategoricalConditionalBatchNorm2d(C, 5, track_running_stats=False)
    layer.load_state_dict(sd)
    e = sd["embed.weight"][4]
    torch.testing.assert_close(layer(X, 4), v(e[:C]) * bn_batch(X) + v(e[C:]))


def test_nst_saadain_layout():
    sd = {"shared_weight": rnd(C, offset=1), "shared_bias": rnd(C)}
    layer = sabn.SandwichAdaIN(C)
    layer.load_state_dict(sd)
    style = torch.randn(5, C, 4, 4, generator=g)
    c_mean, c_std = X.mean((2, 3), keepdim=True), (X.var((2, 3), keepdim=True) + EPS).sqrt()
    s_mean, s_std = style.mean((2, 3), keepdim=True), (style.var((2, 3), keepdim=True) + EPS).sqrt()
    expected = s_std * (v(sd["shared_weight"]) * (X - c_mean) / c_std + v(sd["shared_bias"])) + s_mean
    torch.testing.assert_close(layer(X, style), expected)


def bn_batch(x):
    mean = x.mean((0, 2, 3), keepdim=True)
    var = x.var((0, 2, 3), unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + EPS)
