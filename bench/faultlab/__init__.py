"""The fault lab: a microservice system traced with OpenTelemetry, faults injected one at a time,
and the product's incidents scored against the ground truth. See README.md."""
