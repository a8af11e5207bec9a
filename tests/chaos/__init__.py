"""The chaos suite: the SDK against a fake service that misbehaves on purpose."""
