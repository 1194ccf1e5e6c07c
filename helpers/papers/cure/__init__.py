"""CURE and the topology of classification regions: the document module of chapter 05, after Bardusco &
Carreau (2021), who revisit Moosavi-Dezfooli et al. (2016, DeepFool; 2019, CURE) and Fawzi et al. (2018), by
concern:

- :mod:`~helpers.papers.cure.perturbations`: minimal l2 perturbations (DeepFool, its targeted form, the report's
  runner-up recipe, bisection refinement, the perturbation's norm);
- :mod:`~helpers.papers.cure.hessian`: Hutchinson's estimate of the input Hessian's norm, its top direction;
- :mod:`~helpers.papers.cure.planes`: class maps in planes through an image, boundary curves and curvature;
- :mod:`~helpers.papers.cure.paths`: path-connectedness of classification regions, path statistics;
- :mod:`~helpers.papers.cure.hue`: the hue-rotation attack;
- :mod:`~helpers.papers.cure.geometry`: the five above in one namespace (``G.deepfool``, ``G.connect``...);
- :mod:`~helpers.papers.cure.losses`: the CURE regularizer, its step schedule and its training hook;
- :mod:`~helpers.papers.cure.chapter`: the chapter's parameter rules and its three networks (base, AT, CURE);
- :mod:`~helpers.papers.cure.study`: the chapter's measurements (Figs. 2-3, Tables 1-2, the suite comparison).

Every attack takes ``clip`` and returns a tensor, as in :mod:`helpers.core.attacks`.
"""
