"""Study execution outside the request path: the scheduler (a thread of the service), the
runner processes it starts (one per running study), and their leases on the studies."""
