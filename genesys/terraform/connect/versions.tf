# Stage 1 of 2: what must exist in Genesys Cloud and SSM before `sam deploy` (the OAuth
# client the functions use, its secret in SSM, and the EventBridge integration whose
# partner event source the stack's bus is associated with).
terraform {
  # 1.11: write-only arguments (aws_ssm_parameter.value_wo keeps the secret out of this
  # resource's state); 1.4: `terraform workspace select -or-create`.
  required_version = ">= 1.11.0"

  required_providers {
    genesyscloud = {
      source = "mypurecloud/genesyscloud"
      # The version tests/data/terraform/genesyscloud_provider_schema.json was derived from.
      version = "1.84.1"
    }
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.8"
    }
  }
}

# Authentication: GENESYSCLOUD_OAUTHCLIENT_ID / GENESYSCLOUD_OAUTHCLIENT_SECRET in the
# environment (an admin client of the org, see README "Deploy"); never in a .tf file.
provider "genesyscloud" {
  aws_region = var.genesys_aws_region
}

provider "aws" {
  region = var.aws_region
}
