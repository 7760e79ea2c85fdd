"""CI workflow generation: GitHub Actions (and Forgejo/Gitea Actions) and GitLab CI from one config.

Modules: :mod:`.pins` (the pinned actions, package data), :mod:`.github_model` (the GitHub Actions
workflow as pydantic models), :mod:`.yaml_dump` (model -> YAML text), :mod:`.merge_step` (the
``splitbuild merge`` command the merge job runs), :mod:`.header` (the comment block and the
regenerate command of every generated file), :mod:`.github` (config + plan -> workflow, for GitHub
or Forgejo), :mod:`.gitlab` (config + plan -> GitLab pipeline) with :mod:`.gitlab_model`,
:mod:`.gitlab_rules` (triggers as ``rules:``), :mod:`.gitlab_scripts` (the jobs' ``sh``
scripts) and :mod:`.gitlab_signing` (the keyless sign job), :mod:`.attestations` (provenance/SBOM
and the image exporter options of every build leg), :mod:`.github_signing` (cosign signing and
build provenance attestation in the GitHub merge job), :mod:`.actionlint` (runner labels
actionlint must be told about), :mod:`.starter` (the commented ``splitbuild.toml`` that
``splitbuild init`` writes), :mod:`.files` (which files ``generate`` writes, with their text).
"""
