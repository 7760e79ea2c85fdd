"""CI workflow generation: a typed workflow model, the GitHub Actions writer, the action pins.

Modules: :mod:`.pins` (the pinned actions, package data), :mod:`.model` (the GitHub Actions
workflow as pydantic models), :mod:`.yaml_dump` (model -> YAML text), :mod:`.merge_step` (the
``splitbuild merge`` command the merge job runs), :mod:`.github` (config + plan -> workflow),
:mod:`.actionlint` (runner labels actionlint must be told about), :mod:`.starter` (the commented
``splitbuild.toml`` that ``splitbuild init`` writes).
"""
