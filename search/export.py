"""A result list as CSV or JSON: ``query --format csv|json`` and the page's download button."""

from __future__ import annotations

import csv
import io
import json

from .schema import STAGES, SearchResponse


def results_rows(response: SearchResponse) -> list[dict]:
    """One flat row per result: rank, ids, title, each field, each stage's score, the passage text."""
    names: dict[str, None] = {}
    for r in response.results:
        names.update(dict.fromkeys(r.fields))
    rows = []
    for r in response.results:
        row = {"rank": r.rank, "doc_id": r.doc_id, "passage_id": r.passage_id, "title": r.title}
        row.update({name: r.fields.get(name, "") for name in names})
        row.update({stage: getattr(r.scores, stage) for stage in STAGES})
        row["text"] = r.text
        rows.append(row)
    return rows


def results_csv(response: SearchResponse) -> str:
    """The results as CSV (a header line, UTF-8 text; scores empty where a stage did not run)."""
    rows = results_rows(response)
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return out.getvalue()


def results_json(response: SearchResponse) -> str:
    """The whole response as JSON (the one schema, :meth:`SearchResponse.to_dict`)."""
    return json.dumps(response.to_dict(), ensure_ascii=False, indent=2)
