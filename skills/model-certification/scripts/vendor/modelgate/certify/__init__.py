"""model-certification: playbook runner, evidence, MQS scoring, registry, reports."""
