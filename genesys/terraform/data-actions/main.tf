data "aws_cloudformation_stack" "service" {
  name = var.stack_name
}

locals {
  stack_outputs = data.aws_cloudformation_stack.service.outputs
  actions_dir   = var.data_actions_dir != "" ? var.data_actions_dir : "${path.module}/../../data-actions"
  # One action per file, keyed by file name; the files are Genesys's export format.
  actions = {
    for file_name in fileset(local.actions_dir, "*.json") :
    trimsuffix(file_name, ".json") => jsondecode(file("${local.actions_dir}/${file_name}"))
  }
  integration_ids = {
    "aws-lambda-data-actions" = module.lambda_integration.genesys_integration_id
    "custom-rest-actions"     = var.web_services_integration_id
  }
  # Filtered on values known at plan time (the Lambda integration's id is not): for_each
  # keys must be known before apply.
  wired_actions = {
    for key, action in local.actions : key => action
    if action.integrationType == "aws-lambda-data-actions"
    || (action.integrationType == "custom-rest-actions" && var.web_services_integration_id != "")
  }
}

# Genesys's own module: the aws-lambda-data-actions integration (ENABLED) and its
# amazonWebServicesARN credential, the role Genesys assumes (trust: Genesys's account,
# ExternalId = the org id; allowed to invoke ResolveAttributesFunction only).
module "lambda_integration" {
  source = "git::https://github.com/GenesysCloudDevOps/integration-lambda-module.git?ref=2da106b8a4a5b1435ed47e78bdaaf069be161654"

  environment                       = var.stage
  prefix                            = "participant-attributes"
  data_integration_trusted_role_arn = local.stack_outputs["GenesysDataActionRoleArn"]
}

# The provider's resource rather than Genesys's data-action-lambda-module: that module
# names the action "<env>-<prefix>-data-action" and fixes its response config, where the
# files here carry the names flows call and their own request/response config.
resource "genesyscloud_integration_action" "action" {
  for_each = local.wired_actions

  name                   = "${each.value.name}${var.action_name_suffix}"
  category               = var.action_category
  integration_id         = local.integration_ids[each.value.integrationType]
  secure                 = try(each.value.secure, false)
  config_timeout_seconds = var.action_timeout_seconds
  contract_input         = jsonencode(each.value.contract.input.inputSchema)
  contract_output        = jsonencode(each.value.contract.output.successSchema)

  config_request {
    request_type = each.value.config.request.requestType
    # A Lambda action's URL is this stack's function ARN. A web-services action keeps the
    # file's URL: its base comes from the integration's credential (${credentials.*}).
    request_url_template = (
      each.value.integrationType == "aws-lambda-data-actions"
      ? local.stack_outputs["ResolveAttributesFunctionArn"]
      : each.value.config.request.requestUrlTemplate
    )
    request_template = try(each.value.config.request.requestTemplate, "$${input.rawRequest}")
    headers          = try(each.value.config.request.headers, {})
  }

  config_response {
    translation_map          = try(each.value.config.response.translationMap, {})
    translation_map_defaults = try(each.value.config.response.translationMapDefaults, {})
    success_template         = try(each.value.config.response.successTemplate, "$${rawResult}")
  }

  lifecycle {
    precondition {
      condition     = terraform.workspace == var.stage
      error_message = "Select the stage's workspace first (terraform workspace select -or-create STAGE): one state per stage."
    }
  }
}
