locals {
  name = "participant-attributes-${var.stage}"
  # The per-stage names template.yaml uses when GenesysClient*Parameter are left empty
  # (CONTRACT.md, "SSM names"): two stages in one account never share a credential.
  ssm_prefix                = "/participant-attributes/${var.stage}/genesys"
  partner_event_source_name = "aws.partner/genesys.com/cloud/${var.genesys_org_id}/${var.event_source_suffix}"
  kms_key_id                = var.kms_key_arn != "" ? var.kms_key_arn : null
}

# The service's role: exactly what its Genesys calls need.
# - Sure (the SDK's generated docs, ConversationsApi.md): GET /api/v2/conversations/{id}
#   requires conversation:communication:view. FetchAttributes and the API read it for
#   media other than VOICE and MESSAGE, and `localdev doctor` reads it.
# - Assumption: the media-specific GETs (/conversations/calls/{id},
#   /conversations/messages/{id}) and the three participant-attribute PATCHes need no
#   further permission (the same docs say "Requires no permissions"). Visibility still
#   follows the divisions below. If a real org answers 403 to the PATCH, `python -m
#   localdev doctor --patch-test-attribute` says so, and the permission goes here.
# - The token itself (client credentials) needs no permission.
resource "genesyscloud_auth_role" "service" {
  name        = "${local.name} service"
  description = "Participant attributes service (${var.stage}): reads conversations, writes participant attributes."

  permission_policies {
    domain      = "conversation"
    entity_name = "communication"
    action_set  = ["view"]
  }
}

# Client credentials: no scopes, the role above on the chosen divisions. The Terraform
# admin client must itself hold this role's permissions to grant them (Genesys rule).
resource "genesyscloud_oauth_client" "service" {
  name                          = local.name
  description                   = "Participant attributes service (${var.stage}); its secret is in SSM ${local.ssm_prefix}/client-secret."
  authorized_grant_type         = "CLIENT-CREDENTIALS"
  access_token_validity_seconds = var.token_validity_seconds
  # Needed to copy the secret to SSM. It puts the secret in this stage's Terraform state
  # (sensitive, never printed, never an output): keep the state encrypted (README).
  expose_client_secret = true

  dynamic "roles" {
    # "" = no division_id = the home division.
    for_each = length(var.division_ids) > 0 ? toset(var.division_ids) : toset([""])
    content {
      role_id     = genesyscloud_auth_role.service.id
      division_id = roles.value == "" ? null : roles.value
    }
  }

  lifecycle {
    precondition {
      condition     = terraform.workspace == var.stage
      error_message = "Select the stage's workspace first (terraform workspace select -or-create STAGE): one state per stage."
    }
  }
}

# The OAuth client's id is its client id. Not a secret, but the template reads both
# credentials as SecureStrings (by default with the aws/ssm key, which needs no grant).
resource "aws_ssm_parameter" "client_id" {
  name        = "${local.ssm_prefix}/client-id"
  description = "Genesys OAuth client id of participant-attributes ${var.stage} (Terraform: genesys/terraform/connect)."
  type        = "SecureString"
  key_id      = local.kms_key_id
  value       = genesyscloud_oauth_client.service.id
}

# value_wo: write-only, so the aws provider keeps no copy of the secret in state.
resource "aws_ssm_parameter" "client_secret" {
  name             = "${local.ssm_prefix}/client-secret"
  description      = "Genesys OAuth client secret of participant-attributes ${var.stage} (Terraform: genesys/terraform/connect)."
  type             = "SecureString"
  key_id           = local.kms_key_id
  value_wo         = genesyscloud_oauth_client.service.client_secret
  value_wo_version = var.client_secret_version

  lifecycle {
    # A new OAuth client has a new secret: write it again.
    replace_triggered_by = [genesyscloud_oauth_client.service.id]
  }
}

# The pipeline's extra OAuth clients (GenesysExtraClientCount): client-2 ... client-N+1,
# the same role on the same divisions, their credentials at the per-stage names the
# template grants TokenRefresher (ssm_prefix/client-N/client-id and .../client-secret).
resource "genesyscloud_oauth_client" "extra" {
  count                         = var.extra_client_count
  name                          = "${local.name} client-${count.index + 2}"
  description                   = "Participant attributes service (${var.stage}), extra client ${count.index + 2}; its secret is in SSM ${local.ssm_prefix}/client-${count.index + 2}/client-secret."
  authorized_grant_type         = "CLIENT-CREDENTIALS"
  access_token_validity_seconds = var.token_validity_seconds
  expose_client_secret          = true

  dynamic "roles" {
    for_each = length(var.division_ids) > 0 ? toset(var.division_ids) : toset([""])
    content {
      role_id     = genesyscloud_auth_role.service.id
      division_id = roles.value == "" ? null : roles.value
    }
  }

  lifecycle {
    precondition {
      condition     = terraform.workspace == var.stage
      error_message = "Select the stage's workspace first (terraform workspace select -or-create STAGE): one state per stage."
    }
  }
}

resource "aws_ssm_parameter" "extra_client_id" {
  count       = var.extra_client_count
  name        = "${local.ssm_prefix}/client-${count.index + 2}/client-id"
  description = "Genesys OAuth client id of participant-attributes ${var.stage}, extra client ${count.index + 2} (Terraform: genesys/terraform/connect)."
  type        = "SecureString"
  key_id      = local.kms_key_id
  value       = genesyscloud_oauth_client.extra[count.index].id
}

resource "aws_ssm_parameter" "extra_client_secret" {
  count            = var.extra_client_count
  name             = "${local.ssm_prefix}/client-${count.index + 2}/client-secret"
  description      = "Genesys OAuth client secret of participant-attributes ${var.stage}, extra client ${count.index + 2} (Terraform: genesys/terraform/connect)."
  type             = "SecureString"
  key_id           = local.kms_key_id
  value_wo         = genesyscloud_oauth_client.extra[count.index].client_secret
  value_wo_version = var.client_secret_version

  lifecycle {
    replace_triggered_by = [genesyscloud_oauth_client.extra[count.index].id]
  }
}

# Genesys's own module for the EventBridge integration (amazon-eventbridge-source,
# ENABLED). Genesys then creates the partner event source in the account; the SAM stack
# associates it with a bus (CreateGenesysEventBus=true).
module "event_bridge" {
  source = "git::https://github.com/GenesysCloudDevOps/aws-event-bridge-module.git?ref=9378e443ce9c26b5f752135965ca2f4876d79357"

  integration_name    = "${local.name} EventBridge"
  aws_account_id      = var.aws_account_id
  aws_account_region  = var.aws_region
  event_source_suffix = var.event_source_suffix
  topic_filters       = var.topic_filters
}
