"""Reference data and pure rules of the domain: no database, no HTTP."""
