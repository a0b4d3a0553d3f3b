"""The browser app served by ``localrag serve`` at ``/`` (issue 13): static files, no build step."""
