"""Routing evals: does each skill's description make a router pick it when, and only when, it should?

Modules: ``cases`` (load eval files), ``frontmatter`` (parse SKILL.md), ``embedding``
(all-MiniLM-L6-v2 through OpenVINO), ``lexical`` (TF-IDF baseline), ``router`` (clause
prototypes, threshold, margin, calibration), ``metrics`` (pure scoring), ``agent`` (a real
agent CLI), ``validate`` (the skill validator), ``cli`` (the runner).
"""
