/**
 * Option checks shared by the subpath entries (`bulwark/health`, `bulwark/prometheus`), with
 * the same messages as the core's. The entries take nothing but types from the core (and
 * `show.ts`, which imports nothing), so no code of the core is bundled twice; the core never
 * imports this file.
 */

import { options } from './shared/options.js';
import { show } from './shared/show.js';

export { options, show };
