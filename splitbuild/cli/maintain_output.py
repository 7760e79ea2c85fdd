"""Human output of the maintenance commands: rich tables on a terminal, plain columns otherwise.

Plain output is meant for scripts: one record per line, columns separated by two or more spaces,
no colour. rich is imported only when stdout (or stderr, for the progress bar) is a terminal.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from splitbuild.models import Descriptor
    from splitbuild.ops import (
        CopyResult,
        DeleteResult,
        DeletionOutcome,
        DeletionPlan,
        InspectResult,
        PruneResult,
        TagResult,
        VerifyResult,
    )


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def printable(text: str) -> str:
    """Registry-supplied text made safe for a terminal (:func:`splitbuild.scrub.scrub`): no credential
    splitbuild holds, control, line-break and bidirectional characters shown escaped, unpaired
    surrogates escaped instead of failing the write."""
    from splitbuild.scrub import scrub

    return scrub(text.encode("utf-8", "backslashreplace").decode("utf-8"))


def _out(text: str = "") -> None:
    sys.stdout.write(printable(text) + "\n")


_DIGEST = re.compile(r"^(sha256:[0-9a-f]{12})[0-9a-f]{52}$|^(sha512:[0-9a-f]{12})[0-9a-f]{116}$")


def terminal_width(full_digests: bool) -> int | None:
    """The width tables must fit: the terminal's when stdout is one (and digests may be shortened),
    else None (plain output for scripts keeps every digest whole)."""
    if full_digests or not sys.stdout.isatty():
        return None
    import shutil

    return shutil.get_terminal_size().columns


def _short_digest(cell: str) -> str:
    match = _DIGEST.match(cell)
    return (match.group(1) or match.group(2)) if match else cell


def fit(
    headers: Sequence[str], rows: Sequence[Sequence[str]], width: int | None
) -> tuple[list[str], list[list[str]]]:
    """The table to print: columns that are empty in every row dropped; when the table is wider
    than ``width``, full digests shortened to ``sha256:`` and 12 hex digits (as docker does)."""
    keep = [i for i in range(len(headers)) if any(row[i] for row in rows)]
    heads = [headers[i] for i in keep]
    cells = [[row[i] for i in keep] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(heads)]
    if width is not None and 2 + sum(widths) + 2 * (len(widths) - 1) > width:
        cells = [[_short_digest(cell) for cell in row] for row in cells]
    return heads, cells


def table(
    title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], width: int | None = None
) -> None:
    """A table: rich on a terminal; otherwise a title line and aligned plain columns. See :func:`fit`."""
    if not rows:
        return
    headers, rows = fit(headers, [[printable(cell) for cell in row] for row in rows], width)
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        grid = Table(title=title, title_justify="left", show_edge=False, header_style="bold")
        for header in headers:
            grid.add_column(header, overflow="fold")
        for row in rows:
            grid.add_row(*(Text(cell) for cell in row))  # Text: no markup from the registry
        Console(width=width).print(grid)
        return
    _out(f"{title}:")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    for line in [headers, *rows]:
        _out("  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())


def _fields(pairs: Sequence[tuple[str, Any]], width: int | None = None) -> None:
    """``key  value`` lines, values aligned; ``key: value`` where aligned lines would not fit ``width``."""
    shown = [(key, str(value)) for key, value in pairs if value is not None]
    pad = max(len(k) for k, _ in shown)
    aligned = width is None or all(pad + 2 + len(value) <= width for _, value in shown)
    for key, value in shown:
        _out(f"{key.ljust(pad)}  {value}" if aligned else f"{key}: {value}")


def inspect_report(result: InspectResult, width: int | None = None) -> None:
    """What inspect prints; tables fit ``width`` (see :func:`terminal_width`)."""
    m = result.manifest
    _out(result.reference)
    pairs: list[tuple[str, Any]] = [("digest", m.digest), ("mediaType", m.media_type), ("size", m.size)]
    if result.parent is not None:
        pairs.append(("index", result.parent.digest))
    if m.parsed.artifact_type:
        pairs.append(("artifactType", m.parsed.artifact_type))
    if m.parsed.subject is not None:
        pairs.append(("subject", m.parsed.subject.digest))
    if result.config is not None:
        pairs += [
            ("platform", result.platform),
            ("created", result.config.created),
            ("config", m.image().config.digest),
        ]
    _fields(pairs, width)
    rows: list[list[str]]
    if m.is_index:
        rows = []
        for child in result.children:
            if child.kind == "attestation":
                target = child.attests_platform or child.descriptor.attests or "?"
                what = f"attestation for {target}"
            else:
                what = child.platform or child.kind
            predicates = ", ".join(child.predicate_types)
            rows.append([what, child.digest, str(child.descriptor.size), predicates])
        table("manifests", ["PLATFORM", "DIGEST", "SIZE", "PREDICATE TYPES"], rows, width)
    else:
        layers = m.image().layers
        rows = [[layer.digest, str(layer.size), layer.media_type] for layer in layers]
        table("layers", ["DIGEST", "SIZE", "MEDIA TYPE"], rows, width)
        if result.config is not None and result.config.labels:
            table("labels", ["KEY", "VALUE"], sorted(result.config.labels.items()), width)
    annotations = m.parsed.annotations or {}
    if annotations:
        table("annotations", ["KEY", "VALUE"], sorted(annotations.items()), width)
    rows = []
    for referrer in result.referrers or []:
        if referrer.subject == m.digest:
            subject = "this " + ("index" if m.is_index else "image")
        else:
            subject = referrer.subject_platform or referrer.subject
        what = ", ".join(referrer.predicate_types) or referrer.descriptor.artifact_type or ""
        rows.append([f"{referrer.kind} for {subject}", referrer.digest, what])
    table("referrers", ["KIND", "DIGEST", "TYPE"], rows, width)


def tag_report(result: TagResult) -> None:
    for tag in result.added:
        _out(f"tagged     {tag} -> {result.digest}")
    for tag in result.unchanged:
        _out(f"unchanged  {tag} (already {result.digest})")


def copy_report(result: CopyResult) -> None:
    if result.unchanged:
        _out(f"unchanged  {result.destination} already points at {result.digest}")
        _referrer_line(result)
        return
    if result.rewritten:
        platforms = ", ".join(result.platforms or [])
        _out(
            f"note: --platform wrote a new index with {platforms}: digest {result.digest} "
            f"(the source index is {result.source_digest})"
        )
    s = result.stats
    _out(f"copied     {result.source} -> {result.destination}")
    _out(f"digest     {result.digest}")
    _out(
        f"blobs      {s.blobs_copied} copied ({s.bytes_copied} bytes), {s.blobs_mounted} mounted, "
        f"{s.blobs_skipped} already there"
    )
    _out(f"manifests  {s.manifests_pushed} pushed, {s.manifests_skipped} already there")
    _referrer_line(result)
    _out(f"requests   {result.requests}")


def _referrer_line(result: CopyResult) -> None:
    s = result.stats
    if s.referrers or s.referrers_present:
        _out(f"referrers  {len(s.referrers)} copied, {s.referrers_present} already there")
    if s.digest_tags or s.digest_tags_present:
        _out(f"cosign     {len(s.digest_tags)} tags copied, {s.digest_tags_present} already there")


def _plan_tables(plan: DeletionPlan, *, show_keep: bool = True) -> None:
    table("delete tags", ["TAG", "WHY"], [[t, r] for t, r in sorted(plan.remove.items())])
    if show_keep:
        table("keep tags", ["TAG", "WHY"], [[t, r] for t, r in sorted(plan.keep.items())])
    by_digest = {d.digest: d for d in plan.manifests}
    rows = []
    for doomed in plan.manifests:
        what = doomed.kind
        parent = by_digest.get(doomed.parent or "")
        if parent is not None:
            what += f" in {', '.join(parent.tags) or parent.digest[:19]}"
        rows.append([doomed.digest, what, ", ".join(doomed.tags)])
    table("delete manifests (in this order)", ["DIGEST", "WHAT", "TAGS"], rows)
    if plan.untag:
        rows = [[t, plan.protected.get(plan.digests.get(t, ""), "")] for t in plan.untag]
        table("remove only the tag (the manifest is still needed)", ["TAG", "NEEDED AS"], rows)
    table("keep manifests", ["DIGEST", "NEEDED AS"], [[d, r] for d, r in plan.protected.items()])
    if plan.collateral:
        _out("tags that go with their manifest: " + ", ".join(plan.collateral))


def _outcome_lines(outcome: DeletionOutcome) -> None:
    for tag, method in outcome.untagged.items():
        how = "placeholder manifest" if method == "placeholder" else "tag delete"
        _out(f"untagged   {tag} ({how})")
    for digest in outcome.deleted:
        _out(f"deleted    {digest}")
    for ref in outcome.already_gone:
        _out(f"gone       {ref} (already deleted)")
    for digest in outcome.blobs:
        _out(f"deleted    blob {digest}")


def delete_report(result: DeleteResult) -> None:
    if result.plan is None:
        if result.dry_run:
            _out(f"would untag {result.reference} (manifest {result.digest} stays)")
        else:
            _out(f"untagged   {result.reference} ({result.tag_method}); manifest {result.digest} stays")
        return
    _plan_tables(result.plan, show_keep=False)
    if result.plan.empty:
        _out("nothing to delete")
    if result.outcome is not None:
        _outcome_lines(result.outcome)
    elif result.dry_run:
        _out(f"dry run: nothing deleted ({result.requests} requests)")


def prune_report(result: PruneResult) -> None:
    plan = result.plan
    policy = result.policy.to_dict()
    shown = ", ".join(f"{k}={v}" for k, v in policy.items() if v is not None and v is not False)
    _out(
        f"prune {result.repository} ({shown}): {_n(len(plan.remove), 'tag')} to delete, {len(plan.keep)} kept"
    )
    via = f", deleting through the {result.provider} API" if result.provider != "registry" else ""
    _out(f"ages from {'push' if result.age_from == 'pushed' else 'creation'} time{via}")
    if result.untagged:
        _out(f"{_n(len(result.untagged), 'untagged manifest')} nothing kept reaches")
    sweep = result.sweep
    blobs = sweep.blobs if sweep is not None else {}
    if sweep is not None and sweep.skipped:
        _out(f"no blob deleted: {printable(sweep.skipped)}")
    _plan_tables(plan)
    if blobs:
        table(
            "delete blobs (nothing left references them)",
            ["DIGEST", "SIZE"],
            [[d, str(n)] for d, n in blobs.items()],
        )
    if result.outcome is not None:
        _outcome_lines(result.outcome)
        _out(f"done ({result.requests} requests)")
    elif plan.empty and not blobs:
        _out(f"nothing to delete ({result.requests} requests)")
    else:
        going = [_n(len(plan.manifests), "manifest"), _n(len(plan.untag), "more tag")]
        if sweep is not None and blobs:
            going.append(f"{_n(len(blobs), 'blob')} ({sweep.bytes} bytes)")
        _out(
            f"dry run: nothing deleted ({result.requests} requests); "
            f"{', '.join(going[:-1])} and {going[-1]} would go. Add --yes to delete."
        )


def verify_report(result: VerifyResult) -> None:
    for check in result.checks:
        status = "ok  " if check.ok else "FAIL"
        detail = ", ".join(check.platforms) if check.ok else check.summary()
        if check.ok and result.require_attestations:
            detail += " (attested)"
        _out(f"{status}  {check.reference}  {detail}")


@contextmanager
def copy_progress(enabled: bool) -> Iterator[tuple[Any, Any]]:
    """``(on_progress, on_bytes)`` callbacks drawing a rich progress bar on stderr, or (None, None)."""
    if not enabled or not sys.stderr.isatty():
        yield None, None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TransferSpeedColumn,
    )

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = progress.add_task("copying", total=0)
    state = {"total": 0, "blobs": 0, "done": 0}

    def on_progress(event: str, desc: Descriptor) -> None:
        if event == "blob-start":
            state["total"] += desc.size
            state["blobs"] += 1
        elif event == "blob-done":
            state["done"] += 1
        progress.update(task, total=state["total"], description=f"blobs {state['done']}/{state['blobs']}")

    def on_bytes(desc: Descriptor, n: int) -> None:
        progress.advance(task, n)

    with progress:
        yield on_progress, on_bytes
