output "lambda_integration_id" {
  description = "The AWS Lambda data-actions integration."
  value       = module.lambda_integration.genesys_integration_id
}

output "action_ids" {
  description = "Data action ids by file name (what Architect's Call Data Action lists by name)."
  value       = { for key, action in genesyscloud_integration_action.action : key => action.id }
}

output "actions_left_out" {
  description = "Action files not created: their integration type has no integration here (web-services actions need web_services_integration_id)."
  value       = sort([for key, action in local.actions : key if !contains(keys(local.wired_actions), key)])
}
