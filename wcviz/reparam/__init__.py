"""The mathematics of reparametrized weights: w = Ψ(v) and everything that follows from it.

* :mod:`wcviz.reparam.psi`: Ψ, Ψ⁻¹ and Ψ' per method (arctan = WC, arsinh, erf, powerprop,
  weightnorm); the one functional core every other code path uses.
* :mod:`wcviz.reparam.layers`: which tensors of a model are reparametrized and recorded.
* :mod:`wcviz.reparam.compander`: :func:`~wcviz.reparam.compander.compand` and
  :func:`~wcviz.reparam.compander.bake` through ``torch.nn.utils.parametrize``.
* :mod:`wcviz.reparam.optim`: :func:`~wcviz.reparam.optim.build_optimizer`, the paper's decay
  rules and the modified adaptive step; :mod:`wcviz.reparam.optguard`: its guard against an
  optimizer built before :func:`compand` (refused) or one missing the paper's rules (warned).

May import: :mod:`wcviz.errors`, torch, numpy. Nothing else of wcviz.
"""
