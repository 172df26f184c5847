"""The web console (docs/console.md): server-rendered pages over the use cases of services/."""
