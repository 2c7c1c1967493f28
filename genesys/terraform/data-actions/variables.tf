variable "stage" {
  type        = string
  description = "The SAM stack's Stage. Must equal the Terraform workspace."
  validation {
    condition     = can(regex("^[a-z0-9-]{1,16}$", var.stage))
    error_message = "stage: 1-16 characters of a-z, 0-9 and -, as template.yaml's Stage."
  }
}

variable "stack_name" {
  type        = string
  description = "The deployed SAM stack (samconfig.toml's stack_name): its outputs give the role and the targets."
}

variable "genesys_aws_region" {
  type        = string
  description = "The AWS region the Genesys Cloud org runs in (mypurecloud.com: us-east-1, ...)."
}

variable "aws_region" {
  type        = string
  description = "The AWS region of the SAM stack."
}

variable "data_actions_dir" {
  type        = string
  description = "Directory of the data-action files (Genesys export format). Empty: genesys/data-actions of this repository."
  default     = ""
}

variable "web_services_integration_id" {
  type        = string
  description = "An existing web-services (custom-rest-actions) integration whose credential holds the API key. Empty: web-services actions are left out (output actions_left_out)."
  default     = ""
}

variable "action_category" {
  type        = string
  description = "Category the actions are listed under in Architect."
  default     = "Participant attributes"
}

variable "action_name_suffix" {
  type        = string
  description = "Appended to each action's name; set it (e.g. \" (dev)\") when two stages share one org, where action names must differ."
  default     = ""
}

variable "action_timeout_seconds" {
  type        = number
  description = "Data action timeout (1-60 s). Keep it above the stack's ResolveBudgetSeconds so the function answers (Failure path) before Genesys gives up (Timeout path)."
  default     = 10
  validation {
    condition     = var.action_timeout_seconds >= 1 && var.action_timeout_seconds <= 60
    error_message = "action_timeout_seconds: 1 to 60."
  }
}
