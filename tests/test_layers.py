"""The layer policy (wcviz.reparam.layers): attention projections, HF Conv1D, embeddings, left-out tensors."""

import warnings

import pytest
import torch
from torch import nn

import wcviz
from wcviz.reparam.compander import compander_of, raw_weight
from wcviz.reparam.layers import left_out, tracked_weights
from wcviz.errors import WcvizError
from _engines import framework


class Encoder(nn.Module):
    """Token embedding + one transformer encoder layer + a head: every kind of weight at once."""

    def __init__(self, vocab=11, dim=8):
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(vocab, dim)
        self.enc = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(dim, nhead=2, dim_feedforward=16, dropout=0.0,
                                       batch_first=True), num_layers=1, enable_nested_tensor=False)
        self.head = nn.Linear(dim, 3)

    def forward(self, ids):
        return self.head(self.enc(self.emb(ids)).mean(1))


ATTN = "enc.layers.0.self_attn.in_proj_weight"
DEFAULT = [ATTN, "enc.layers.0.self_attn.out_proj", "enc.layers.0.linear1",
           "enc.layers.0.linear2", "head"]


def _ids():
    return torch.randint(0, 11, (4, 5), generator=torch.Generator().manual_seed(1))


def test_default_policy_takes_attention_and_reports_the_embedding():
    net = Encoder()
    assert [t.name for t in tracked_weights(net)] == DEFAULT
    assert [t.kind for t in tracked_weights(net)][:2] == ["MultiheadAttention", "Linear"]
    assert [(x.name, x.shape) for x in left_out(net)] == [("emb.weight", (11, 8))]
    assert "Embedding: not tracked by default" in left_out(net)[0].reason


def test_packed_qkv_is_one_companded_tensor_and_bakes_strictly(tmp_path):
    net = Encoder()
    plain = Encoder()
    x = _ids()
    net.eval(), plain.eval()
    before = net(x)
    with pytest.warns(UserWarning, match=r"compand left out 1 weight tensor\(s\).*emb\.weight"):
        wcviz.compand(net, "arctan", a=1.0, b=0.5, learnable="fine")
    attn = net.enc.layers[0].self_attn
    comp = compander_of(attn, "in_proj_weight")
    assert comp is not None and raw_weight(attn, "in_proj_weight").shape == (24, 8)
    assert len(comp.scale_parameters()) == 2  # one a, b for the packed Q/K/V
    assert net.wcviz_compand.layers == DEFAULT
    assert [x.name for x in net.wcviz_compand.left_out] == ["emb.weight"]
    torch.testing.assert_close(net(x), before, rtol=1e-5, atol=1e-6)
    # the modified optimizer treats the packed projection as companded (decay on Ψ(v), Ψ' step)
    opt = wcviz.build_optimizer(net, "adam", lr=1e-2, weight_decay=1e-4)
    groups = {g["wcviz_group"]: g["params"] for g in opt.param_groups}
    assert any(p is raw_weight(attn, "in_proj_weight") for p in groups["companded"])
    net.train()
    for _ in range(3):
        loss = nn.functional.cross_entropy(net(x), torch.tensor([0, 1, 2, 0]))
        opt.zero_grad(), loss.backward(), opt.step()
    net.eval()
    trained = net(x)
    with pytest.warns(UserWarning, match="Recorder left out 1"):
        rec = wcviz.Recorder(net, tmp_path / "run")
    rec.record(0)
    ds = wcviz.open_run(tmp_path / "run")
    assert ds.layer.values.tolist() == DEFAULT
    assert ds.layer_kind.values.tolist()[0] == "MultiheadAttention"
    assert ds.a.sel(layer=ATTN).item() == pytest.approx(comp.scalar_params()["a"])
    wcviz.bake(net)
    plain.load_state_dict(net.state_dict(), strict=True)
    plain.eval()
    torch.testing.assert_close(plain(x), trained, rtol=1e-5, atol=1e-6)


def test_separate_q_k_v_projections():
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, kdim=4, vdim=6, batch_first=True)
    names = [t.name for t in tracked_weights(mha)]
    assert names == ["q_proj_weight", "k_proj_weight", "v_proj_weight", "out_proj"]
    q, k, v = torch.randn(2, 3, 8), torch.randn(2, 5, 4), torch.randn(2, 5, 6)
    before = mha(q, k, v)[0]
    wcviz.compand(mha, "arctan")
    assert all(compander_of(mha, a) is not None for a in ("q_proj_weight", "k_proj_weight"))
    torch.testing.assert_close(mha(q, k, v)[0], before, rtol=1e-5, atol=1e-6)
    state = wcviz.bake(mha).state_dict()
    fresh = nn.MultiheadAttention(8, 2, kdim=4, vdim=6, batch_first=True)
    fresh.load_state_dict(state, strict=True)
    torch.testing.assert_close(fresh(q, k, v)[0], before, rtol=1e-5, atol=1e-6)


def test_embedding_by_include_and_recorder_layer_names(tmp_path):
    net = Encoder()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the user chose: nothing to warn about
        wcviz.compand(net, a=4.0, include=["emb", "*.in_proj_weight"])  # N(0, 1) embedding
    assert net.wcviz_compand.layers == ["emb", ATTN]
    assert raw_weight(net.emb) is not None
    rec = wcviz.Recorder(net, tmp_path / "run", layers=["enc.layers.0.self_attn", "emb.weight"])
    rec.record(0)
    assert wcviz.open_run(tmp_path / "run").layer.values.tolist() == [ATTN, "emb"]
    with pytest.raises(WcvizError, match="no weight tensor"):
        wcviz.Recorder(net, tmp_path / "bad", layers=["enc.layers.0.dropout1"])


def test_anything_two_dimensional_is_reported():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.up = nn.ConvTranspose2d(2, 2, 3)
            self.pos = nn.Parameter(torch.zeros(1, 4, 2))
            self.bias_only = nn.Parameter(torch.zeros(4))  # 1-D: not a weight matrix
            self.fc = nn.Linear(2, 2)

    odd = Odd()
    assert [x.name for x in left_out(odd)] == ["pos", "up.weight"]
    assert [x.reason for x in left_out(odd, exclude="fc")][2] == "excluded by exclude="
    with pytest.warns(UserWarning, match=r"left out 2 weight tensor\(s\)"):
        wcviz.compand(odd)
    assert odd.wcviz_compand.layers == ["fc"]


def test_tied_weights_are_not_companded():
    net = nn.Sequential(nn.Embedding(7, 4), nn.Linear(4, 4), nn.Linear(4, 7, bias=False))
    net[2].weight = net[0].weight  # tied, as GPT-2's lm_head and wte
    ids = torch.arange(7)
    before = net(ids)
    with pytest.warns(UserWarning, match=r"2\.weight \(tied to 0\.weight"):
        wcviz.compand(net)
    assert net.wcviz_compand.layers == ["1"]
    torch.testing.assert_close(net(ids), before)  # the embedding still sees w, not v
    assert [t.name for t in tracked_weights(net, include="*")] == ["0", "1"]
    assert "same tensor as 0.weight" in left_out(net, include="*")[0].reason
    with pytest.raises(WcvizError, match=r"no weight to compand: .*2\.weight \(tied to 0\.weight"):
        wcviz.compand(wcviz.bake(net), include="2")  # matched, but tied: not "nothing matched"


def test_hf_conv1d_is_companded_recorded_and_baked(tmp_path):
    pytorch_utils = framework("transformers.pytorch_utils")
    torch.manual_seed(0)
    net = nn.Sequential(pytorch_utils.Conv1D(6, 4), nn.ReLU(), pytorch_utils.Conv1D(2, 6))
    x = torch.randn(3, 4)
    before = net(x)
    assert [t.kind for t in tracked_weights(net)] == ["Conv1D", "Conv1D"]
    wcviz.compand(net, "arctan", learnable="fine")
    torch.testing.assert_close(net(x), before, rtol=1e-5, atol=1e-6)
    rec = wcviz.Recorder(net, tmp_path / "run")
    rec.record(0)
    assert wcviz.open_run(tmp_path / "run").layer_kind.values.tolist() == ["Conv1D", "Conv1D"]
    plain = nn.Sequential(pytorch_utils.Conv1D(6, 4), nn.ReLU(), pytorch_utils.Conv1D(2, 6))
    plain.load_state_dict(wcviz.bake(net).state_dict(), strict=True)
    torch.testing.assert_close(plain(x), before, rtol=1e-5, atol=1e-6)


def test_left_out_warnings_point_where_the_list_is(tmp_path):
    # compand's list holds tied weights too, which wcviz.reparam.layers.left_out(model) cannot know;
    # the Recorder takes layers=, not include=.
    net = nn.Sequential(nn.Embedding(7, 4), nn.Linear(4, 4), nn.Linear(4, 7, bias=False))
    net[2].weight = net[0].weight
    with pytest.warns(UserWarning, match=r"model\.wcviz_compand\.left_out lists them") as got:
        wcviz.compand(net)
    assert "tied to 0.weight" in str(got[0].message)
    assert [x.name for x in net.wcviz_compand.left_out] == ["0.weight", "2.weight"]
    with pytest.warns(UserWarning, match=r"rec\.left_out lists them; layers=\[\.\.\.\] records"):
        rec = wcviz.Recorder(nn.Sequential(nn.Embedding(7, 4), nn.Linear(4, 4)), tmp_path / "r")
    rec.finish()
