"""Registered methods: one module per method, found by name.

`config.method.name = 'x'` runs `datarater.methods.x`, whose
`make(config, task, dataset)` returns a `datarater.train.state.Method` (one
phase) or a `datarater.train.pipeline.Pipeline` (several phases). The runner
(datarater.run) looks modules up here by name; the training framework below
imports none of them. Modules whose name starts with '_' are shared helpers,
not methods. To add a method, add one module here and one config file in
configs/ (README: "Add a method").
"""
