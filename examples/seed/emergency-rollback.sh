#!/bin/bash
# emergency-rollback.sh - Instant rollback via slot swap
set -euo pipefail
APP_NAME="app-contoso-payments"
RESOURCE_GROUP="rg-contoso-prod"
echo "EMERGENCY ROLLBACK: Swapping production back to previous version..."
# The staging slot contains the previous production version after a swap
az webapp deployment slot swap \
--name $APP_NAME \
--resource-group $RESOURCE_GROUP \
--slot production \
--target-slot staging
echo "Rollback complete. Verifying..."
PROD_URL="https://${APP_NAME}.azurewebsites.net/health"
STATUS=$(curl -s -o /dev/null -w "%{http_code}" "$PROD_URL")
if [ "$STATUS" == "200" ]; then
echo "Production healthy after rollback (status: $STATUS)"
else
echo "WARNING: Production still unhealthy after rollback (status: $STATUS)"
echo "Manual intervention required!"
exit 1
fi
