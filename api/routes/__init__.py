"""One router per resource; each route converts, calls one command or query, and returns."""
