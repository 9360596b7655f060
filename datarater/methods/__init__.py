"""Registered methods: one module per method, found by name.

`config.method.name = 'x'` runs `datarater.methods.x`, whose
`make(config, task, dataset)` returns a `datarater.train.state.Method` (one
phase) or a `datarater.train.pipeline.Pipeline` (several phases). The training
package looks modules up here by name and imports none of them; modules whose
name starts with '_' are shared helpers, not methods. To add a method, add one
module here and one config file in configs/ (README: "Add a method").
"""
