"""The flow of the system jobstore replaces, end to end, against a running server:

  a service creates a "skill_creation" job -> a worker claims it and asks a clarifying question
  -> a person (here, this script) answers -> the worker completes the job.

    build/cli/jobstore serve &
    /usr/bin/python3 clients/python/examples/skill_creation.py [http://127.0.0.1:8000]
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jobstore_client import JobstoreClient, Worker  # noqa: E402

URL = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"


def create_skill(ctx):
    """The worker's handler: understand the request, ask the user, build the skill."""
    ctx.progress(percent=10, phase="understanding", message="reading the request")
    answer = ctx.ask("clarify", {"questions": [{
        "text": "Which invoice formats should the skill parse?", "question_type": "multi",
        "options": [{"id": "pdf", "label": "PDF"}, {"id": "png", "label": "Scanned image"},
                    {"id": "xml", "label": "XML (e-invoice)"}]}]}, timeout=3600)
    ctx.progress(percent=80, phase="building", message=f"formats: {answer}")
    return {"skill": "parse_invoices", "formats": answer}


def main() -> None:
    service = JobstoreClient(URL)
    job = service.create("skill_creation", description="Create a skill for parsing invoices",
                         input={"prompt": "I get invoices from suppliers and want the totals"})
    print(f"service: created {job['job_id']}")

    worker = Worker(JobstoreClient(URL), ["skill_creation"], create_skill, lease_seconds=30,
                    poll_seconds=1)
    threading.Thread(target=worker.run, daemon=True).start()

    person = JobstoreClient(URL, user_id="alice")
    asked = person.get(job["job_id"])
    while asked["status"] != "pending_hitl":  # wait for the question, woken by each change
        asked = person.get(job["job_id"], wait=30, after_version=asked["version"])
    question = asked["hitl"]["prompt"]["questions"][0]["text"]
    print(f"person: asked {question!r}; answering pdf and xml")
    person.respond_hitl(job["job_id"], asked["hitl"]["request_id"], ["pdf", "xml"])

    done = service.get(job["job_id"])
    while done["status"] not in ("completed", "failed", "cancelled"):
        done = service.get(job["job_id"], wait=30, after_version=done["version"])
    worker.stop()
    print(f"service: job {done['status']} with result {done['result']}")
    print("history:", " -> ".join(e["type"] for e in service.events(job["job_id"])))


if __name__ == "__main__":
    main()
