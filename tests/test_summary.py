"""jnn.summary against torch: per-layer output shapes from a real torch forward (in call order), parameter counts
from torch's parameters(); and proof that it computes nothing (an input far too large for memory)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jnn


def torch_rows(net: torch.nn.Module, *inputs: torch.Tensor) -> list[tuple[str, object]]:
    """(name, output shape) per module call of a real torch forward, in call (pre-)order."""
    rows: list[list] = []
    names = {id(m): n for n, m in net.named_modules()}
    stack: list[list] = []

    def shape(o):
        if isinstance(o, torch.Tensor):
            return list(o.shape)
        if isinstance(o, tuple):
            return tuple(shape(x) for x in o)
        return None if o is None else type(o).__name__

    def pre(m, args):
        rows.append([names[id(m)], None])
        stack.append(rows[-1])

    def post(m, args, out):
        stack.pop()[1] = shape(out)

    handles = [h for m in net.modules()
               for h in (m.register_forward_pre_hook(pre), m.register_forward_hook(post))]
    net(*inputs)
    for h in handles:
        h.remove()
    return [tuple(r) for r in rows]


def check_against_torch(j: jnn.Module, t: torch.nn.Module, *inputs: np.ndarray) -> jnn.summary:
    """Rows match torch's forward (names, order, shapes) and torch's parameter counts."""
    info = jnn.summary(j, input_data=[jnp.asarray(x) for x in inputs])
    assert [(r["name"], r["output_size"]) for r in info.rows] == torch_rows(t, *map(torch.from_numpy, inputs))
    torch_modules = dict(t.named_modules())
    for row in info.rows:
        sub = torch_modules[row["name"]]
        assert row["type"] == type(sub).__name__
        assert row["num_params"] == sum(p.numel() for p in sub.parameters())
        assert row["own_params"] == sum(p.numel() for p in sub.parameters(recurse=False))
        assert row["trainable_params"] == sum(p.numel() for p in sub.parameters() if p.requires_grad)
    assert info.total_params == sum(p.numel() for p in t.parameters())
    assert info.trainable_params == sum(p.numel() for p in t.parameters() if p.requires_grad)
    assert info.non_trainable_params == sum(p.numel() for p in t.parameters() if not p.requires_grad)
    assert info.param_bytes == sum(p.numel() * p.element_size() for p in t.parameters())
    # element counts as torch's; bytes in jnn's dtypes (num_batches_tracked is int32 without x64)
    assert sum(np.size(b) for b in j.buffers()) == sum(b.numel() for b in t.buffers())
    assert info.buffer_bytes == sum(np.asarray(b).nbytes for b in j.buffers())
    return info


def cnn(lib):
    class Net(lib.Module):
        def __init__(self):
            super().__init__()
            self.features = lib.Sequential(lib.Conv2d(3, 8, 3, padding=1), lib.BatchNorm2d(8), lib.ReLU(),
                                           lib.MaxPool2d(2), lib.Conv2d(8, 4, 3), lib.ReLU())
            self.head = lib.Sequential(lib.Flatten(), lib.Linear(4 * 2 * 2, 10))

        def forward(self, x):
            return self.head(self.features(x))

    return Net()


def test_cnn_with_batchnorm_and_frozen_layer_matches_torch():
    t, j = cnn(torch.nn), cnn(jnn)
    t.features[0].requires_grad_(False)
    j.features[0].requires_grad_(False)
    info = check_against_torch(j, t, np.zeros((2, 3, 8, 8), np.float32))
    assert info.non_trainable_params == 3 * 8 * 9 + 8 > 0
    text = str(info)
    assert "Total params: 702" in text and "Trainable params: 478" in text and "Non-trainable params: 224" in text
    assert "│    └─BatchNorm2d: 2-2" in text and "├─Sequential: 1-2" in text


def test_transformer_encoder_matches_torch():
    def make(lib):
        layer = lib.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
        return lib.TransformerEncoder(layer, 2, enable_nested_tensor=False)

    info = check_against_torch(make(jnn), make(torch.nn), np.zeros((3, 5, 16), np.float32))
    attention = [r for r in info.rows if r["type"] == "MultiheadAttention"]
    assert len(attention) == 2 and attention[0]["output_size"] == ([3, 5, 16], None)


def test_lstm_tuple_output_matches_torch():
    def make(lib):
        class Tagger(lib.Module):
            def __init__(self):
                super().__init__()
                self.embed = lib.Embedding(50, 6)
                self.rnn = lib.LSTM(6, 8, num_layers=2, batch_first=True)
                self.out = lib.Linear(8, 5)

            def forward(self, tokens):
                hidden, _ = self.rnn(self.embed(tokens))
                return self.out(hidden)

        return Tagger()

    tokens = np.array([[1, 2, 3, 4], [5, 6, 7, 0]], np.int32)
    info = check_against_torch(make(jnn), make(torch.nn), tokens)
    assert info.rows[2]["output_size"] == ([2, 4, 8], ([2, 2, 8], [2, 2, 8]))


def test_nothing_is_computed_for_an_input_too_large_for_memory():
    net = cnn(jnn).features
    info = jnn.summary(net, input_size=(10_000, 3, 1024, 1024))  # 126 GB of input, ~1 TB of activations
    assert info.input_bytes == 10_000 * 3 * 1024 * 1024 * 4
    assert [r["output_size"] for r in info.rows[1:]] == [
        [10_000, 8, 1024, 1024], [10_000, 8, 1024, 1024], [10_000, 8, 1024, 1024], [10_000, 8, 512, 512],
        [10_000, 4, 510, 510], [10_000, 4, 510, 510]]
    assert info.output == jax.ShapeDtypeStruct((10_000, 4, 510, 510), jnp.float32)
    assert info.forward_bytes > 10**12


def test_summary_leaves_the_model_unchanged():
    j = cnn(jnn)
    before = {k: np.asarray(v) for k, v in j.state_dict().items()}
    j.eval()
    info = jnn.summary(j, input_size=[(2, 3, 8, 8)], mode="train")
    assert info.rows[0]["output_size"] == [2, 10]
    assert not j.training and not j.features[1].training
    for k, v in j.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in j.modules())


def test_table_depth_columns_and_recursive_rows():
    shared = jnn.Linear(4, 4)

    class Twice(jnn.Module):
        def __init__(self):
            super().__init__()
            self.block = jnn.Sequential(shared, jnn.ReLU())
            self.scale = jnn.Parameter(jnp.ones(4))

        def forward(self, x, *, bias=0.0):
            return self.block(self.block[0](x) + bias) * self.scale

    info = jnn.summary(Twice(), input_data={"x": jnp.ones((2, 4))}, bias=1.0,
                       col_names=("input_size", "output_size", "num_params", "params_percent", "trainable"),
                       row_settings=("depth", "var_names"))
    assert [(r["name"], r["depth"], r["depth_index"], r["recursive"]) for r in info.rows] == [
        ("", 0, "0-1", False), ("block.0", 1, "1-1", False), ("block", 1, "1-2", False),
        ("block.0", 2, "2-1", True), ("block.1", 2, "2-2", False)]
    text = str(info)
    assert "Linear (0): 1-1" in text and "(recursive)" in text and "Twice" in text and "Param %" in text
    assert info.total_params == 24
    shallow = jnn.summary(Twice(), input_size=(2, 4), depth=0)
    lines = str(shallow).splitlines()
    assert lines[3].split()[-1] == "24" and "Linear" not in str(shallow)  # the root row shows its subtree


def test_inputs_as_shape_dtype_structs_and_without_inputs():
    net = jnn.Sequential(jnn.Embedding(10, 3), jnn.Flatten())
    info = jnn.summary(net, input_size=jax.ShapeDtypeStruct((2, 5), jnp.int32))
    assert info.rows[-1]["output_size"] == [2, 15]
    info = jnn.summary(net, input_size=(2, 5), dtypes=[jnp.int32])
    assert info.rows[1]["output_size"] == [2, 5, 3]
    from_torch = jnn.summary(net, input_data=[torch.zeros(2, 5, dtype=torch.int32)])  # as in torchinfo
    assert from_torch.rows[-1]["output_size"] == [2, 15] and from_torch.input_bytes == 2 * 5 * 4
    bare = jnn.summary(net)
    assert [(r["name"], r["output_size"], r["num_params"]) for r in bare.rows] == [
        ("", None, 30), ("0", None, 30), ("1", None, 0)]


def test_summary_errors():
    net = jnn.Linear(3, 2)
    with pytest.raises(ValueError, match="not both"):
        jnn.summary(net, input_size=(1, 3), input_data=jnp.ones((1, 3)))
    with pytest.raises(TypeError, match="input_size must be a shape"):
        jnn.summary(net, input_size="1x3")
    with pytest.raises(ValueError, match="unknown column 'flops'"):
        jnn.summary(net, input_size=(1, 3), col_names=["flops"])
    with pytest.raises(ValueError, match="depth must be a non-negative int"):
        jnn.summary(net, input_size=(1, 3), depth=-1)
    with pytest.raises(RuntimeError, match="forward of Linear failed on the given inputs"):
        jnn.summary(net, input_size=(1, 5))
    with pytest.raises(TypeError, match="expects a jnn.Module"):
        jnn.summary(torch.nn.Linear(3, 2), input_size=(1, 3))


def test_scanned_stack_gets_a_row_per_block_like_the_loop_it_replaces():
    class Stack(jnn.Module):
        def __init__(self, scan: bool) -> None:
            super().__init__()
            self.layers = jnn.ModuleList([jnn.Sequential(jnn.Linear(4, 4), jnn.Tanh()) for _ in range(3)])
            self.scan = scan

        def forward(self, x):
            if self.scan:
                return jnn.scan_layers(self.layers, x)
            for layer in self.layers:
                x = layer(x)
            return x

    looped, scanned = jnn.summary(Stack(False), input_size=(2, 4)), jnn.summary(Stack(True), input_size=(2, 4))
    assert [(r["name"], r["output_size"], r["num_params"]) for r in scanned.rows] == [
        (r["name"], r["output_size"], r["num_params"]) for r in looped.rows]
    assert [r["name"] for r in scanned.rows].count("layers.2.0") == 1 and scanned.total_params == 60
