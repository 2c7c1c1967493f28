variable "stage" {
  type        = string
  description = "The SAM stack's Stage (dev, prod, ...): part of names and of the SSM parameter names. Must equal the Terraform workspace."
  validation {
    condition     = can(regex("^[a-z0-9-]{1,16}$", var.stage))
    error_message = "stage: 1-16 characters of a-z, 0-9 and -, as template.yaml's Stage."
  }
}

variable "genesys_org_id" {
  type        = string
  description = "The Genesys Cloud organization id (Admin > Organization Settings): part of the partner event source name."
  validation {
    condition     = can(regex("^[0-9a-f-]{36}$", var.genesys_org_id))
    error_message = "genesys_org_id: the organization's UUID."
  }
}

variable "genesys_aws_region" {
  type        = string
  description = "The AWS region the Genesys Cloud org runs in (mypurecloud.com: us-east-1, mypurecloud.de: eu-central-1, usw2.pure.cloud: us-west-2, ...)."
  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.genesys_aws_region))
    error_message = "genesys_aws_region: an AWS region name such as us-east-1 (not the region domain)."
  }
}

variable "aws_account_id" {
  type        = string
  description = "The AWS account the SAM stack is deployed to: Genesys creates the partner event source there."
  validation {
    condition     = can(regex("^[0-9]{12}$", var.aws_account_id))
    error_message = "aws_account_id: 12 digits."
  }
}

variable "aws_region" {
  type        = string
  description = "The AWS region of the SAM stack (samconfig.toml's region): the partner event source and the SSM parameters are created there."
  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.aws_region))
    error_message = "aws_region: an AWS region name such as us-east-1."
  }
}

variable "event_source_suffix" {
  type        = string
  description = "Suffix of the partner event source aws.partner/genesys.com/cloud/{org}/{suffix}; one per stage."
  validation {
    condition     = can(regex("^[A-Za-z0-9._-]{1,64}$", var.event_source_suffix))
    error_message = "event_source_suffix: at most 64 characters of letters, digits, '.', '_' and '-'."
  }
}

variable "topic_filters" {
  type        = list(string)
  description = "Genesys topics sent to EventBridge. Must match template.yaml's GenesysTopics (a test checks the default)."
  default = [
    "v2.detail.events.conversation.{id}.customer.start",
    "v2.detail.events.conversation.{id}.attributes",
  ]
}

variable "division_ids" {
  type        = list(string)
  description = "Divisions the service's role is granted on. Empty: the home division only. [\"*\"]: all divisions. Conversations routed through queues or flows of other divisions are invisible to the service."
  default     = []
}

variable "token_validity_seconds" {
  type        = number
  description = "Lifetime of the service's access tokens (300-172800 s). The TokenRefresher renews an hour ahead, so keep it above 2 h."
  default     = 86400
  validation {
    condition     = var.token_validity_seconds >= 7200 && var.token_validity_seconds <= 172800
    error_message = "token_validity_seconds: between 7200 (the refresher renews 1 h ahead every 30 min) and 172800."
  }
}

variable "client_secret_version" {
  type        = number
  description = "Bump to write the client secret to SSM again (a write-only value is never compared with state). Recreating the OAuth client rewrites it by itself."
  default     = 1
}

variable "kms_key_arn" {
  type        = string
  description = "Customer-managed KMS key for the two SecureStrings: the stack's KmsKeyArn, whose grants let the functions decrypt. Empty: the aws/ssm key."
  default     = ""
}

variable "extra_client_count" {
  type        = number
  description = "Extra OAuth clients for the pipeline (template.yaml's GenesysExtraClientCount, 0-4): client-2 ... client-5, each with the same role and its own token and rate limit. Only for genuine peak volume (README, \"More than one OAuth client\")."
  default     = 0
  validation {
    condition     = var.extra_client_count >= 0 && var.extra_client_count <= 4 && floor(var.extra_client_count) == var.extra_client_count
    error_message = "extra_client_count: a whole number from 0 to 4 (GenesysExtraClientCount's allowed values)."
  }
}
