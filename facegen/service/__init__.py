"""The facegen web service: cases over HTTP, scoped per tenant, audited, run on a durable queue (issue 19)."""
