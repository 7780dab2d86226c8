import { PeError } from '@pe-stack/pe-host';

/** Error codes of the lab: each names one thing an operator can fix. */
export type LabErrorCode =
  | 'E_LAB_NOT_ROOT'
  | 'E_LAB_MISSING_PACKAGES'
  | 'E_LAB_SUBNET_IN_USE'
  | 'E_LAB_NOT_UP'
  | 'E_LAB_ALREADY_UP'
  | 'E_LAB_UNKNOWN_HOST'
  | 'E_LAB_HOST_OFF'
  | 'E_LAB_OUTSIDE_CONTROLLER'
  | 'E_LAB_USAGE'
  | 'E_LAB_BUSY'
  | 'E_LAB_BOOT'
  | 'E_LAB_COMMAND';

export class LabError extends PeError<LabErrorCode> {}
