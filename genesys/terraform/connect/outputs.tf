# What `sam deploy` needs (samconfig.toml's parameter_overrides). No output carries the
# client secret: it is in SSM only (and, sensitive, in this stage's state).

output "partner_event_source_name" {
  description = "GenesysEventSourceName for sam deploy (Genesys creates the source within minutes of the apply)."
  value       = local.partner_event_source_name
}

output "sam_parameter_overrides" {
  description = "The values of this stage to put in samconfig.toml's parameter_overrides."
  value       = "Stage=${var.stage} GenesysOrgId=${var.genesys_org_id} GenesysEventSourceName=${local.partner_event_source_name} CreateGenesysEventBus=true GenesysExtraClientCount=${var.extra_client_count}"
}

output "oauth_client_id" {
  description = "The service's OAuth client id (also in SSM)."
  value       = genesyscloud_oauth_client.service.id
}

output "ssm_parameter_names" {
  description = "The SSM SecureStrings written (template.yaml's per-stage defaults)."
  value = {
    client_id     = aws_ssm_parameter.client_id.name
    client_secret = aws_ssm_parameter.client_secret.name
  }
}

output "role_id" {
  description = "The service's Genesys role."
  value       = genesyscloud_auth_role.service.id
}

output "event_bridge_integration_id" {
  description = "The Genesys EventBridge integration."
  value       = module.event_bridge.id
}
