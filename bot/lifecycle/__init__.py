"""The lifecycle: the collaborators every service shares (context), notices, people,
and the one facade (`service.Lifecycle`) surfaces, the API and the scheduler call."""
