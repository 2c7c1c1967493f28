# Stage 2 of 2, after `sam deploy`: the AWS Lambda data-actions integration (its
# credential is the role the stack made for Genesys) and the data actions of
# genesys/data-actions/, pointed at this stack's function and API.
terraform {
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

# Authentication: GENESYSCLOUD_OAUTHCLIENT_ID / GENESYSCLOUD_OAUTHCLIENT_SECRET (README).
provider "genesyscloud" {
  aws_region = var.genesys_aws_region
}

provider "aws" {
  region = var.aws_region
}
