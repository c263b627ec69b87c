/**
 * The playground's built files, by name, when they are embedded: the CLI bundle
 * (scripts/build-cli.mjs) replaces this module with the contents of `dist/playground` at build
 * time, so the one-file `dist/cli/shimmy.js` serves the page with nothing beside it. Run from the
 * sources or from `dist/src`, there is nothing embedded and Assets.ts reads the built files.
 */
export const embedded: Readonly<Record<string, string>> | undefined = undefined
